"""Every storefront route under /api/v1/: each app contributes its own `api.urls`."""

from django.urls import include, path

urlpatterns = [
    path("", include("activities.api.urls", namespace="api")),
    path("", include("segments.api.urls", namespace="segments-api")),
    path("", include("notifications.api.urls", namespace="notifications-api")),
]

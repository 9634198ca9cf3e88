from django.urls import path

from . import broadcasts

app_name = "notifications-api"

urlpatterns = [
    path(
        "broadcasts/<int:broadcast_id>/",
        broadcasts.BroadcastDetailView.as_view(),
        name="broadcast-detail",
    ),
]

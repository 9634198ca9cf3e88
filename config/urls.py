from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.admin.language import set_own_language
from observability.health import health_view
from observability.metrics import metrics_view

urlpatterns = [
    path("admin/language/", set_own_language, name="gambit_set_language"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("config.api_router")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script as a file, so the page needs no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("health/", health_view, name="health"),
    path("metrics", metrics_view, name="metrics"),
]

handler404 = "core.api.errors.page_not_found"
handler500 = "core.api.errors.server_error"

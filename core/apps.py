from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """The kernel: errors, admin and API plumbing, time zones, the rule grammar, database and
    Redis helpers. It imports no domain app; every domain app builds on it."""

    name = "core"
    verbose_name = _("Storefront access")

    def ready(self) -> None:
        from core.api import schema  # noqa: F401  (registers the OpenAPI auth extension)

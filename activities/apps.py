from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ActivitiesConfig(AppConfig):
    name = "activities"
    verbose_name = _("Activities")

    def ready(self) -> None:
        from activities.engine import processors  # noqa: F401  (registers the built-ins)
        from activities.services.events import record_system_event
        from core.system_events import register_recorder

        register_recorder(record_system_event)

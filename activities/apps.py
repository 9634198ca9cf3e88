from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ActivitiesConfig(AppConfig):
    name = "activities"
    verbose_name = _("Activities")

    def ready(self) -> None:
        # Services send tasks by name (activities.enqueue), and Celery autodiscovers task
        # modules only in workers: the web and beat processes register them here.
        from activities import tasks  # noqa: F401
        from activities.engine import processors  # noqa: F401  (registers the built-ins)
        from activities.experiments import tasks as experiment_tasks  # noqa: F401
        from activities.selectors import live_activities_sending
        from activities.services.events import record_system_event
        from core.system_events import register_recorder
        from notifications import activity_senders

        register_recorder(record_system_event)
        # A notification template is frozen while a live activity sends it; the notifications
        # app sits below this one and asks through this lookup.
        activity_senders.register_lookup(live_activities_sending)

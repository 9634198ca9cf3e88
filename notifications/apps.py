from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        # Services send tasks by name (notifications.enqueue), and Celery autodiscovers task
        # modules only in workers: the web and beat processes register them here, once the
        # models they import are loaded.
        from notifications import tasks  # noqa: F401

import logging.config
import os

from celery import Celery, signals
from django_structlog.celery.steps import DjangoStructLogInitStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("gambit")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(**kwargs: object) -> None:
    """Workers log exactly as the web does (JSON lines, DJANGO_LOG_LEVEL), not Celery's way."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# Binds the task id and name into every log line a task writes.
app.steps["worker"].add(DjangoStructLogInitStep)

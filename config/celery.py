import logging.config
import os

from celery import Celery, Task, signals
from django_structlog.celery.steps import DjangoStructLogInitStep

# Production unless told otherwise: a forgotten variable must fail closed (no key, no DEBUG),
# never serve with a published key; make run chooses config.settings.development.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("gambit")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(**kwargs: object) -> None:
    """Workers log exactly as the web does (JSON lines, DJANGO_LOG_LEVEL), not Celery's way."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.task_prerun.connect
@signals.task_postrun.connect
def recycle_database_connections(task: Task | None = None, **kwargs: object) -> None:
    """Treat each task like a request: drop a connection that broke or outlived CONN_MAX_AGE,
    keep a healthy one. Celery's own Django fixup would close every connection around every
    task (see CELERY_DB_REUSE_MAX in settings), which made each event open a new PostgreSQL
    session and cost more than the chain it ran. A task run eagerly, inside its caller's
    request or transaction, leaves the caller's connection alone."""
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()


# Binds the task id and name into every log line a task writes.
app.steps["worker"].add(DjangoStructLogInitStep)

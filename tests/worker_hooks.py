"""Loaded by test workers only (CELERY_IMPORTS in config/settings/test.py).

Transactional tests flush the database between tests, and the content types come back with
new ids; a long-lived worker must not keep the old ones cached (django-fsm-log writes them).
"""

from celery import shared_task
from celery.signals import task_prerun
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from core.redis_pools import redis_client


@task_prerun.connect
def forget_content_types(**kwargs: object) -> None:
    ContentType.objects.clear_cache()


@shared_task(name="tests.record_backend_pid_task")
def record_backend_pid_task(redis_key: str) -> None:
    """Reports which PostgreSQL session the worker ran a task on (for the connection tests)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    redis_client().rpush(redis_key, pid)

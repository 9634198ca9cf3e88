"""Loaded by test workers only (CELERY_IMPORTS in config/settings/test.py).

Transactional tests flush the database between tests, and the content types come back with
new ids; a long-lived worker must not keep the old ones cached (django-fsm-log writes them).

A worker started with GAMBIT_TEST_STALLING_STEPS=1 plays host to hostile events: the
build_result step of an event whose payload has `stall_seconds` stays busy that long, and with
`ignore_soft_limit` it carries on through the soft time limit (the time-limit tests).
"""

import os
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_prerun
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from activities.engine.context import RunContext
from activities.engine.processors.build_result import BuildResult
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


_build_result = BuildResult.process


def _stalling_build_result(self: BuildResult, ctx: RunContext) -> None:
    deadline = time.monotonic() + float(ctx.event.payload.get("stall_seconds", 0))
    while time.monotonic() < deadline:
        try:
            time.sleep(max(deadline - time.monotonic(), 0))
        except SoftTimeLimitExceeded:
            if not ctx.event.payload.get("ignore_soft_limit"):
                raise
    _build_result(self, ctx)


if os.environ.get("GAMBIT_TEST_STALLING_STEPS") == "1":
    BuildResult.process = _stalling_build_result  # type: ignore[method-assign]

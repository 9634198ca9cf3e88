"""Work handed to Celery by task name.

Services never import a `tasks` module: tasks import services to run them, so the reverse import
would be a cycle. Each app's `enqueue.py` names its tasks and calls these helpers; Celery finds the
task in its registry, so eager mode, routes and time limits apply exactly as with `task.delay()`.
Celery autodiscovers task modules only in workers, so each app that sends by name imports its
`tasks` module in `AppConfig.ready()`, which registers the tasks in web and beat processes too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import structlog
from celery import current_app
from django.db import transaction

logger = structlog.get_logger(__name__)


def send(
    task_name: str,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> bool:
    """Send the task now. A broker failure is logged and answered with False, never raised: the
    caller's transaction has committed by now, and whatever must happen has a row that a sweeper
    sends again."""
    try:
        current_app.tasks[task_name].apply_async(args=args, kwargs=kwargs, **options)
    except Exception:  # kombu raises several unrelated types for "broker unreachable"
        logger.warning("enqueue_failed", task=task_name, exc_info=True)
        return False
    return True


def on_commit(
    task_name: str,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> None:
    """Send the task once the current transaction commits (at once outside one). Each callback is
    robust: one that fails cannot stop the callbacks registered after it."""
    transaction.on_commit(
        partial(send, task_name, args=args, kwargs=kwargs, **options), robust=True
    )

"""Celery tasks: thin, idempotent, taking ids; the services do the work."""

import datetime as dt

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from activities import enqueue
from activities.services import event_attempts, events, lifecycle, webhooks


@shared_task(
    name=enqueue.RUN_EVENT,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
    soft_time_limit=settings.GAMBIT_EVENT_SOFT_TIME_LIMIT,
    time_limit=settings.GAMBIT_EVENT_TIME_LIMIT,
)
def run_event_task(self, event_id: str) -> None:
    try:
        events.process_event(event_id=event_id)
    except SoftTimeLimitExceeded:
        event_attempts.record_time_limit(
            event_id=event_id, seconds=settings.GAMBIT_EVENT_SOFT_TIME_LIMIT
        )
    except DatabaseError as error:
        if self.request.retries >= self.max_retries:
            events.fail_event(event_id=event_id, error=str(error))
            return
        events.record_retry(event_id=event_id, error=str(error))
        raise


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_pending_events_task() -> int:
    return events.sweep_unfinished_events(
        older_than=dt.timedelta(seconds=settings.GAMBIT_SWEEP_AFTER_SECONDS)
    )


# The WebhookCall row counts attempts and caps them, and the sweeper sends again what a failed
# task left behind; Celery's retries only wake the next attempt when it is due.
@shared_task(
    name=enqueue.CALL_WEBHOOK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=settings.GAMBIT_WEBHOOK_SOFT_TIME_LIMIT,
    time_limit=settings.GAMBIT_WEBHOOK_TIME_LIMIT,
)
def call_webhook_task(self, call_id: int) -> None:
    try:
        retry_in = webhooks.send_webhook_call(call_id=call_id)
    except SoftTimeLimitExceeded:
        retry_in = webhooks.record_time_limit(
            call_id=call_id, seconds=settings.GAMBIT_WEBHOOK_SOFT_TIME_LIMIT
        )
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_webhook_calls_task() -> int:
    return webhooks.sweep_webhook_calls(
        overdue_after=dt.timedelta(seconds=settings.GAMBIT_SWEEP_AFTER_SECONDS)
    )


# --- Lifecycle on the clock: beat's one-off tasks, the catch-up sweep, the exhaustion guard.
# Beat may deliver a one-off twice; each service re-checks the transition under a row lock.

_LIFECYCLE_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


@shared_task(name=enqueue.LAUNCH_ACTIVITY, **_LIFECYCLE_TASK)
def launch_activity_task(activity_id: int) -> bool:
    return lifecycle.launch_activity(activity_id=activity_id)


@shared_task(name=enqueue.END_ACTIVITY, **_LIFECYCLE_TASK)
def end_activity_task(activity_id: int) -> bool:
    return lifecycle.end_activity(
        activity_id=activity_id, reason=lifecycle.REASON_WINDOW_CLOSED, if_due=True
    )


@shared_task(name=enqueue.EXHAUST_ACTIVITY, **_LIFECYCLE_TASK)
def exhaust_activity_task(activity_id: int) -> bool:
    return lifecycle.exhaust_activity(activity_id=activity_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def catch_up_activities_task() -> dict[str, list[str]]:
    return lifecycle.catch_up()

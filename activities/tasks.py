"""Celery tasks: thin, idempotent, taking ids; the services do the work."""

import datetime as dt

import httpx
from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from activities import enqueue
from activities.services import events, lifecycle, webhooks


@shared_task(
    name=enqueue.RUN_EVENT,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def run_event_task(self, event_id: str) -> None:
    try:
        events.process_event(event_id=event_id)
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


@shared_task(
    name=enqueue.CALL_WEBHOOK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(httpx.HTTPError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=12,
)
def call_webhook_task(*, url: str, body: dict, idempotency_key: str) -> int | None:
    try:
        return webhooks.deliver_webhook(url=url, body=body, idempotency_key=idempotency_key)
    except webhooks.WebhookRejected:
        return None


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

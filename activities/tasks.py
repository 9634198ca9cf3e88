"""Celery tasks: thin, idempotent, taking ids; the services do the work."""

import datetime as dt

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from activities import enqueue
from activities.services import (
    coupon_expiry,
    coupon_issue,
    event_attempts,
    events,
    journeys,
    lifecycle,
    settlement,
    webhooks,
)


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


# Beat's sweep of due waiting runs: each row is claimed with SKIP LOCKED and resumed in the
# claiming transaction, so overlapping sweeps share the work and a killed one loses nothing;
# beyond GAMBIT_JOURNEY_SWEEPERS at once, a sweep returns at once.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.GAMBIT_JOURNEY_SWEEP_SECONDS + 30,
    time_limit=settings.GAMBIT_JOURNEY_SWEEP_SECONDS + 60,
)
def resume_due_waits_task() -> int:
    return journeys.resume_due(
        limit=settings.GAMBIT_JOURNEY_BATCH,
        seconds=settings.GAMBIT_JOURNEY_SWEEP_SECONDS,
        sweepers=settings.GAMBIT_JOURNEY_SWEEPERS,
    )


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


# Gameplays: teams and help requests past their lifetime expire; ended activities are settled
# (leaderboard prizes) under their Settlement row's lock, once, however often beat fires.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=8,
    soft_time_limit=120,
    time_limit=150,
)
def settle_gameplays_task() -> dict[str, int]:
    return settlement.settle_gameplays()


# --- Coupons: issuing to a segment (pages under the issue's row lock, so a second copy of the
# task just waits its turn) and the nightly expiry in short batches.


@shared_task(
    name=enqueue.ISSUE_BENEFIT,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=8,
    soft_time_limit=settings.GAMBIT_ISSUE_SECONDS + 60,
    time_limit=settings.GAMBIT_ISSUE_SECONDS + 90,
)
def issue_benefit_task(issue_id: int) -> str:
    outcome = coupon_issue.run_issue(issue_id=issue_id, seconds=settings.GAMBIT_ISSUE_SECONDS)
    if outcome == "more":
        enqueue.issue_benefit(issue_id=issue_id)
    return outcome


@shared_task(acks_late=True, reject_on_worker_lost=True)
def resume_stalled_issues_task() -> int:
    return coupon_issue.resume_stalled_issues(
        older_than=dt.timedelta(seconds=settings.GAMBIT_ISSUE_STALLED_SECONDS)
    )


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_coupons_task() -> int:
    return coupon_expiry.expire_due_coupons()

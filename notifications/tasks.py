"""Celery tasks: thin, idempotent, taking ids; the services do the work.

Planner and sender loops re-enqueue themselves one page / one batch at a time (see
`services.dispatch`), so every task is short, and a killed worker loses at most one page or
batch of progress, which the lease expiry and the sweeper hand to another worker.
"""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from notifications import enqueue
from notifications.models import DeliveryStatus
from notifications.services import broadcasts, dispatch, planning, sending, sweeper

# A loop waiting for planning or for retries looks again after this many seconds.
IDLE_SECONDS = 1.0


@shared_task(
    name=enqueue.LAUNCH_BROADCAST, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def launch_broadcast_task(broadcast_id: int) -> bool:
    return broadcasts.launch_broadcast(broadcast_id=broadcast_id)


@shared_task(
    name=enqueue.FIRE_STANDING_BROADCAST,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def fire_standing_broadcast_task(broadcast_id: int) -> int | None:
    occurrence = broadcasts.fire_standing_broadcast(broadcast_id=broadcast_id)
    return occurrence.pk if occurrence else None


@shared_task(
    name=enqueue.PLAN_BROADCAST,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=10,
)
def plan_broadcast_task(broadcast_id: int, token: str) -> str:
    key = dispatch.planner_key(broadcast_id)
    if not dispatch.hold(key, token):
        return "busy"
    outcome = planning.plan_next_page(broadcast_id=broadcast_id)
    if outcome == "more":
        dispatch.hold(key, token)
        plan_broadcast_task.delay(broadcast_id, token)
        dispatch.ensure_senders(broadcast_id)
        return outcome
    dispatch.release(key, token)
    if outcome == "done" and not broadcasts.complete_if_done(broadcast_id=broadcast_id):
        dispatch.ensure_senders(broadcast_id)
    return outcome


@shared_task(
    name=enqueue.SEND_BATCH,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=10,
)
def send_batch_task(broadcast_id: int, slot: int, token: str, after: int = 0) -> dict:
    key = dispatch.sender_key(broadcast_id, slot)
    if not dispatch.hold(key, token):
        return {"busy": True}
    report = sending.send_batch(
        broadcast_id=broadcast_id, after=after, heartbeat=lambda: dispatch.hold(key, token)
    )
    if report.state != "sending":
        dispatch.release(key, token)
        return report.counts
    if report.claimed:
        send_batch_task.delay(broadcast_id, slot, token, report.last_id)
        return report.counts
    if broadcasts.complete_if_done(broadcast_id=broadcast_id):
        dispatch.release(key, token)
        return report.counts
    # Nothing claimable now: planning is still running, retries are waiting out their backoff,
    # the provider's circuit is open, or other senders hold the last rows.
    wait = report.retry_in if report.retry_in is not None else IDLE_SECONDS
    dispatch.hold(key, token, wait + dispatch.lease_seconds())
    send_batch_task.apply_async((broadcast_id, slot, token), countdown=wait)
    return report.counts


@shared_task(
    name=enqueue.SEND_DELIVERY,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def send_delivery_task(self, delivery_id: int) -> str | None:
    outcome = sending.send_single(delivery_id=delivery_id)
    if outcome is None:
        return None
    if outcome.status == DeliveryStatus.QUEUED:
        # Waiting out a backoff or an open circuit: the row says when it is due again.
        raise self.retry(countdown=max(outcome.delay, IDLE_SECONDS))
    return outcome.status


@shared_task(
    name=enqueue.SETTLE_CANCELLED_BROADCAST,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def settle_cancelled_broadcast_task(broadcast_id: int) -> int:
    return broadcasts.settle_cancelled(broadcast_id=broadcast_id)


@shared_task(
    name=enqueue.SWEEP_DELIVERIES, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def sweep_deliveries_task() -> dict[str, int]:
    return sweeper.sweep()

"""The deliveries sweep beat runs every few seconds: whatever a crash, a lost task or a missed
beat firing left behind is found in the database and set moving again."""

from __future__ import annotations

import datetime as dt

import structlog
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from notifications import enqueue
from notifications.models import Broadcast, BroadcastKind, BroadcastState, Delivery, DeliveryStatus
from notifications.services import dispatch
from notifications.services.broadcasts import complete_if_done, launch_broadcast, settle_cancelled
from notifications.services.deliveries import Outcome, flush

logger = structlog.get_logger(__name__)

# Rows of one kind a sweep takes on; the next sweep takes the rest.
SWEEP_CHUNK = 10_000
LOST_CLAIMS_EXHAUSTED = "senders_lost"


def _requeue_stale_claims(stale_before: dt.datetime) -> int:
    """Claims nobody renewed: their sender died. Back to queued, the claim counted as lost
    (not as a provider attempt), through the same conditional flush as any outcome. A message
    whose senders keep dying with it (one that crashes the worker) fails once
    NOTIFICATIONS_MAX_LOST_CLAIMS claims are lost, rather than kill workers for ever."""
    stale = list(
        Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale_before)
        .order_by("broadcast_id", "pk")
        .values_list("pk", "broadcast_id", "attempts", "lost_claims")[:SWEEP_CHUNK]
    )
    if not stale:
        return 0
    logger.warning("stale_claims_requeued", count=len(stale))
    by_broadcast: dict[int | None, list[Outcome]] = {}
    for pk, broadcast_id, attempts, lost_claims in stale:
        exhausted = lost_claims + 1 >= settings.NOTIFICATIONS_MAX_LOST_CLAIMS
        by_broadcast.setdefault(broadcast_id, []).append(
            Outcome(
                pk,
                attempts,
                DeliveryStatus.FAILED if exhausted else DeliveryStatus.QUEUED,
                LOST_CLAIMS_EXHAUSTED if exhausted else "",
                "the sender stopped responding",
                lost=True,
            )
        )
    for owner_id, outcomes in by_broadcast.items():
        flush(outcomes, broadcast_id=owner_id)
        if owner_id is None:
            for outcome in outcomes:
                if outcome.status == DeliveryStatus.QUEUED:
                    enqueue.send_delivery(delivery_id=outcome.delivery_id)
    return len(stale)


def sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Requeue claims of dead senders, restart loops that lost their worker, launch one-offs
    whose beat task was missed, finish what is done."""
    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS)
    report = {"requeued": 0, "launched": 0, "completed": 0, "kicked": 0, "settled": 0}
    report["requeued"] = _requeue_stale_claims(stale_before)
    # Transactional messages whose task was lost (a worker killed before it ran).
    for delivery_id in (
        Delivery.objects.filter(
            broadcast__isnull=True, status=DeliveryStatus.QUEUED, updated_at__lt=stale_before
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("pk", flat=True)[:SWEEP_CHUNK]
    ):
        enqueue.send_delivery(delivery_id=delivery_id)
    for broadcast_id in Broadcast.objects.filter(
        state=BroadcastState.SCHEDULED,
        kind=BroadcastKind.ONE_OFF,
        send_at__lte=now,
    ).values_list("pk", flat=True):
        if launch_broadcast(broadcast_id=broadcast_id):
            logger.warning("broadcast_launched_on_catch_up", broadcast=broadcast_id)
            report["launched"] += 1
    for broadcast_id, planned_at in Broadcast.objects.filter(
        state=BroadcastState.SENDING
    ).values_list("pk", "planned_at"):
        if planned_at is not None and complete_if_done(broadcast_id=broadcast_id):
            report["completed"] += 1
            continue
        if planned_at is None:
            dispatch.ensure_planner(broadcast_id)
        dispatch.ensure_senders(broadcast_id)
        report["kicked"] += 1
    for broadcast_id in (
        Broadcast.objects.filter(
            state=BroadcastState.CANCELLED, deliveries__status=DeliveryStatus.QUEUED
        )
        .values_list("pk", flat=True)
        .distinct()
    ):
        report["settled"] += settle_cancelled(broadcast_id=broadcast_id)
    return report

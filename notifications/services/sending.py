"""Sending: claim a batch of a broadcast (or one transactional delivery), prepare each message
for its customer, and hand them to a `Batch` to send and record.

A message is marked `sent` right after the provider accepts it, a few at a time; a sender
killed in between leaves its claim to expire, and the message is sent again with the same
idempotency key (Message-ID for email). See docs/decisions/notifications-delivery.md.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from notifications import circuit, rendering
from notifications.backends import Message, get_backend
from notifications.models import Broadcast, BroadcastState, Delivery, DeliveryStatus, SkipReason
from notifications.services.batch import Batch, BatchReport, rate_buckets
from notifications.services.deliveries import (
    Claimed,
    Outcome,
    claim_batch,
    claim_single,
    flush,
)
from segments.models import Customer


def _in_quiet_hours(customer: Customer, broadcast: Broadcast, now: dt.datetime) -> bool:
    if broadcast.quiet_start is None or broadcast.quiet_end is None:
        return False
    try:
        zone = zoneinfo.ZoneInfo(customer.timezone) if customer.timezone else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = None
    local = now.astimezone(zone or zoneinfo.ZoneInfo(broadcast.timezone)).time()
    start, end = broadcast.quiet_start, broadcast.quiet_end
    return start <= local < end if start < end else (local >= start or local < end)


def compose(
    *,
    template: Any,
    data: rendering.Scope,
    delivery_id: int,
    address: str,
    customer: str,
    broadcast_id: int | None,
) -> Message:
    """Render every text of the template for one customer (raises RenderError)."""
    return Message(
        delivery_id=delivery_id,
        address=address,
        subject=rendering.render(template.subject, data),
        body=rendering.render(template.body, data),
        fields={name: rendering.render(str(text), data) for name, text in template.fields.items()},
        provider_template_id=template.provider_template_id,
        link=template.link,
        customer=customer,
        broadcast_id=broadcast_id,
    )


def broadcast_data(customer: Customer, broadcast: Broadcast) -> rendering.Scope:
    return rendering.Scope(
        {"customer": rendering.customer_data(customer), "broadcast": {"name": broadcast.name}}
    )


def send_batch(
    *, broadcast_id: int, after: int = 0, heartbeat: Callable[[], object] | None = None
) -> BatchReport:
    """Claim and send one batch of a broadcast (from id `after`, then from the start: retries
    and handed-back rows sit behind the loop's position)."""
    broadcast = Broadcast.objects.select_related("template").filter(pk=broadcast_id).first()
    if broadcast is None:  # an occurrence that planned nobody is deleted when it completes
        return BatchReport(state="")
    if broadcast.state != BroadcastState.SENDING:
        return BatchReport(state=broadcast.state)
    backend = get_backend(broadcast.template.channel)
    if wait := circuit.open_for(backend.key):
        return BatchReport(state=broadcast.state, retry_in=wait)
    claimed = claim_batch(broadcast_id=broadcast_id, limit=broadcast.batch_size, after=after)
    if not claimed and after:
        claimed = claim_batch(broadcast_id=broadcast_id, limit=broadcast.batch_size)
    if not claimed:
        return BatchReport(state=broadcast.state)
    customers = Customer.objects.in_bulk([c.customer_id for c in claimed])
    now = timezone.now()
    work: list[tuple[Claimed, Message]] = []
    early: list[Outcome] = []
    for item in claimed:
        customer = customers.get(item.customer_id)
        if customer is None:
            early.append(Outcome(item.id, item.attempts, DeliveryStatus.FAILED, "no_customer"))
            continue
        if _in_quiet_hours(customer, broadcast, now):
            early.append(
                Outcome(item.id, item.attempts, DeliveryStatus.SKIPPED, SkipReason.QUIET_HOURS)
            )
            continue
        try:
            message = compose(
                template=broadcast.template,
                data=broadcast_data(customer, broadcast),
                delivery_id=item.id,
                address=item.address,
                customer=customer.external_id,
                broadcast_id=broadcast_id,
            )
        except rendering.RenderError as error:
            early.append(
                Outcome(item.id, item.attempts, DeliveryStatus.FAILED, "render_error", str(error))
            )
            continue
        work.append((item, message))
    batch = Batch(
        backend=backend,
        work=work,
        buckets=rate_buckets(backend.key, broadcast),
        broadcast_id=broadcast_id,
        claimed_at=claimed[0].claimed_at,
        heartbeat=heartbeat,
    )
    if early:
        batch.record(early)
    report = batch.run() if work else batch.report
    report.claimed = len(claimed)
    report.last_id = claimed[-1].id
    return report


def send_single(*, delivery_id: int) -> Outcome | None:
    """Send one transactional delivery (already rendered when its run committed)."""
    claimed = claim_single(delivery_id=delivery_id)
    if claimed is None:
        return None
    delivery = (
        Delivery.objects.only("channel", "customer__external_id")
        .select_related("customer")
        .get(pk=delivery_id)
    )
    backend = get_backend(delivery.channel)
    rendered = claimed.rendered or {}
    message = Message(
        delivery_id=claimed.id,
        address=claimed.address,
        subject=rendered.get("subject", ""),
        body=rendered.get("body", ""),
        fields=rendered.get("fields", {}),
        provider_template_id=rendered.get("provider_template_id", ""),
        link=rendered.get("link", ""),
        customer=delivery.customer.external_id,
    )
    if circuit.open_for(backend.key):
        outcome = Outcome(
            claimed.id,
            claimed.attempts,
            DeliveryStatus.QUEUED,
            delay=circuit.open_for(backend.key),
            release=True,
        )
        flush([outcome], broadcast_id=None)
        return outcome
    batch = Batch(
        backend=backend,
        work=[(claimed, message)],
        buckets=rate_buckets(backend.key, None),
        broadcast_id=None,
        claimed_at=claimed.claimed_at,
        heartbeat=None,
    )
    batch.run()
    return batch.outcomes[-1] if batch.outcomes else None

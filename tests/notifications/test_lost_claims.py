"""Claims lost with their sender (a killed worker, Redis restarting under a batch) hand the
message back without spending the provider's retry budget; a message that keeps taking its
senders down fails after NOTIFICATIONS_MAX_LOST_CLAIMS."""

import datetime as dt

import pytest
from django.utils import timezone

from notifications import ratelimit
from notifications.backends import get_backend
from notifications.models import Broadcast, Delivery
from notifications.services import batch, deliveries, sending, sweeper
from segments.models import Customer
from tests.notifications.factories import make_customers
from tests.notifications.test_sending import started

pytestmark = pytest.mark.django_db


def lose_claim(broadcast: Broadcast, settings) -> None:
    """A sender claims the queue and is killed: the sweep finds its claims stale."""
    assert deliveries.claim_batch(broadcast_id=broadcast.pk, limit=100)
    later = timezone.now() + dt.timedelta(seconds=settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS + 1)
    sweeper.sweep(now=later)


def delivery_state(broadcast: Broadcast) -> tuple[str, str, int, int]:
    return Delivery.objects.values_list("status", "reason", "attempts", "lost_claims").get(
        broadcast=broadcast
    )


def test_claims_lost_with_killed_senders_leave_the_provider_retries_untouched(smtp, settings):
    broadcast = started(make_customers(1))
    for _ in range(settings.NOTIFICATIONS_MAX_ATTEMPTS + 2):
        lose_claim(broadcast, settings)
    assert delivery_state(broadcast) == ("queued", "", 8, 8)

    assert sending.send_batch(broadcast_id=broadcast.pk).counts == {"sent": 1}
    assert delivery_state(broadcast) == ("sent", "", 9, 8)
    assert [message.to for message in smtp.snapshot()] == ["c-0@example.test"]


def test_provider_failures_after_lost_claims_still_exhaust_the_retries(smtp, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    broadcast = started(make_customers(1))
    lose_claim(broadcast, settings)
    lose_claim(broadcast, settings)
    smtp.stop()
    assert sending.send_batch(broadcast_id=broadcast.pk).counts == {"retry": 1}
    Delivery.objects.filter(broadcast=broadcast).update(next_attempt_at=None)
    assert sending.send_batch(broadcast_id=broadcast.pk).counts == {"failed": 1}
    assert delivery_state(broadcast) == ("failed", "retries_exhausted", 4, 2)


def test_a_message_that_keeps_losing_its_senders_fails(settings):
    settings.NOTIFICATIONS_MAX_LOST_CLAIMS = 3
    broadcast = started(make_customers(1))
    for _ in range(3):
        lose_claim(broadcast, settings)
    assert delivery_state(broadcast) == ("failed", sweeper.LOST_CLAIMS_EXHAUSTED, 3, 3)
    broadcast.refresh_from_db()
    assert (broadcast.sent, broadcast.failed) == (0, 1)


def test_a_batch_that_loses_redis_hands_its_messages_back_unattempted(smtp, settings, monkeypatch):
    broadcast = started(make_customers(3), rate_limit=1000)
    claimed = deliveries.claim_batch(broadcast_id=broadcast.pk, limit=10)
    customers = Customer.objects.in_bulk([item.customer_id for item in claimed])
    work = [
        (
            item,
            sending.compose(
                template=broadcast.template,
                data=sending.broadcast_data(customers[item.customer_id], broadcast),
                delivery_id=item.id,
                address=item.address,
                customer=customers[item.customer_id].external_id,
                broadcast_id=broadcast.pk,
            ),
        )
        for item in claimed
    ]
    # Redis goes away between the claim and the sends: nothing listens on port 1.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(ratelimit, "_script", None)

    report = batch.Batch(
        backend=get_backend("email"),
        work=work,
        buckets=batch.rate_buckets("email", broadcast),
        broadcast_id=broadcast.pk,
        claimed_at=claimed[0].claimed_at,
        heartbeat=None,
    ).run()

    assert report.counts == {}
    assert smtp.snapshot() == []
    rows = Delivery.objects.filter(broadcast=broadcast).values_list(
        "status", "attempts", "claimed_at"
    )
    assert sorted(rows) == [("queued", 0, None)] * 3

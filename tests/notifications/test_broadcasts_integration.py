"""Broadcasts end to end: real Celery workers, PostgreSQL, Redis and an SMTP server on loopback.

- 20,000 customers: each consenting customer gets exactly one message; everyone else has a
  skipped Delivery with its reason.
- Workers SIGKILLed twice mid-broadcast, then restarted: 0 missing, 0 duplicates.
- An SMTP outage pauses the broadcast; resume completes it.
- Pause, resume and cancel mid-send.
- One rate limit shared by two worker processes.
"""

from __future__ import annotations

import math
import time
from collections import Counter

import pytest
from django.utils import timezone

from notifications.models import Broadcast, BroadcastState, Delivery
from notifications.services import broadcasts, sweeper
from segments.models import Customer
from tests.conftest import wait_until
from tests.notifications.factories import BroadcastFactory, make_customers, make_segment

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FINISHED = (BroadcastState.COMPLETED, BroadcastState.CANCELLED, BroadcastState.FAILED)


def finished(broadcast_id: int, *, timeout: float, sweep_every: float | None = None) -> Broadcast:
    """Wait for the broadcast to finish; with `sweep_every`, run the sweeper as beat would."""
    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic()
    while time.monotonic() < deadline:
        broadcast = Broadcast.objects.get(pk=broadcast_id)
        if broadcast.state in FINISHED:
            return broadcast
        if sweep_every is not None and time.monotonic() >= next_sweep:
            sweeper.sweep()
            next_sweep = time.monotonic() + sweep_every
        time.sleep(0.2)
    raise AssertionError(f"broadcast {broadcast_id} still {broadcast.state}: {broadcast.__dict__}")


def expected_addresses(customer_ids: list[int]) -> set[str]:
    return set(
        Customer.objects.filter(
            pk__in=customer_ids, email_consent=True, unsubscribed_at__isnull=True
        )
        .exclude(email="")
        .values_list("email", flat=True)
    )


def assert_exactly_once(smtp, addresses: set[str]) -> None:
    received = smtp.by_recipient()
    duplicates = {to: n for to, n in received.items() if n > 1}
    missing = addresses - set(received)
    assert (len(missing), len(duplicates)) == (0, 0), (sorted(missing)[:5], duplicates)
    assert set(received) == addresses


def test_20000_customers_each_consenting_one_gets_exactly_one_message(smtp, celery_worker):
    ids = make_customers(20_000)
    # One in ten without consent, one in ten unsubscribed, one in ten without an address.
    Customer.objects.filter(pk__in=ids[0::10]).update(email_consent=False)
    Customer.objects.filter(pk__in=ids[1::10]).update(unsubscribed_at=timezone.now())
    Customer.objects.filter(pk__in=ids[2::10]).update(email="")
    broadcast = BroadcastFactory(segment=make_segment(ids), batch_size=500)

    broadcasts.start_broadcast(broadcast_id=broadcast.pk)
    done = finished(broadcast.pk, timeout=240)

    assert done.state == BroadcastState.COMPLETED
    consenting = expected_addresses(ids)
    assert len(consenting) == 14_000
    assert_exactly_once(smtp, consenting)
    assert smtp.count() == 14_000
    reasons = Counter(Delivery.objects.filter(broadcast=broadcast).values_list("status", "reason"))
    assert reasons == {
        ("sent", ""): 14_000,
        ("skipped", "no_consent"): 2_000,
        ("skipped", "unsubscribed"): 2_000,
        ("skipped", "no_address"): 2_000,
    }
    assert (done.planned, done.sent, done.failed, done.skipped) == (20_000, 14_000, 0, 6_000)
    assert done.skipped_by_reason == {"no_consent": 2000, "unsubscribed": 2000, "no_address": 2000}


@pytest.mark.reliability
def test_workers_killed_twice_mid_broadcast_lose_and_duplicate_nothing(smtp, make_worker, sweeper):
    """Exactly-once over SMTP cannot be promised by any sender: a worker killed after the server
    accepted a message but before the row says `sent` leaves that message in doubt, and it is
    sent again - with the same Message-ID, which is what receivers dedupe on. So: no customer
    misses a message, no customer gets two different messages, and the in-doubt resends are
    few (bounded by what was in flight) and carry the original Message-ID."""
    ids = make_customers(3_000)
    broadcast = BroadcastFactory(segment=make_segment(ids), batch_size=100, rate_limit=600)
    worker = make_worker(concurrency=3)
    broadcasts.start_broadcast(broadcast_id=broadcast.pk)

    for kill_at in (600, 1_600):
        wait_until(lambda n=kill_at: smtp.count() >= n, timeout=60, interval=0.02)
        worker.kill()
        worker = make_worker(concurrency=3)

    done = finished(broadcast.pk, timeout=180)
    assert done.state == BroadcastState.COMPLETED
    assert (done.sent, done.failed, done.skipped) == (3_000, 0, 0)

    messages = smtp.distinct()
    per_customer = Counter(message.to for message in messages.values())
    addresses = expected_addresses(ids)
    assert set(per_customer) == addresses  # 0 missing
    assert set(per_customer.values()) == {1}  # 0 duplicates: one message per customer
    sent_ids = {
        f"<gambit-d{pk}@gambit.local>"
        for pk in Delivery.objects.filter(broadcast=broadcast, status="sent").values_list(
            "pk", flat=True
        )
    }
    assert set(messages) == sent_ids
    resent = smtp.count() - len(messages)
    # In doubt at each kill: at most the three processes' batches in flight.
    assert resent <= 2 * 3 * 100, resent
    print(f"in-doubt resends after two SIGKILLs: {resent}")


def test_an_smtp_outage_pauses_the_broadcast_and_resume_completes_it(smtp, celery_worker):
    ids = make_customers(300)
    smtp.stop()
    broadcast = BroadcastFactory(segment=make_segment(ids), batch_size=50, pause_after_errors=8)
    broadcasts.start_broadcast(broadcast_id=broadcast.pk)

    paused = wait_until(
        lambda: Broadcast.objects.filter(pk=broadcast.pk, state=BroadcastState.PAUSED).first(),
        timeout=60,
    )
    assert paused.state_reason.startswith("paused after ")
    assert Delivery.objects.filter(broadcast=broadcast, status="failed").count() == 0

    smtp.start()
    broadcasts.resume_broadcast(broadcast_id=broadcast.pk)
    done = finished(broadcast.pk, timeout=120)
    assert done.state == BroadcastState.COMPLETED
    assert_exactly_once(smtp, expected_addresses(ids))
    assert (done.sent, done.failed) == (300, 0)


def test_pause_resume_and_cancel_mid_send(smtp, celery_worker):
    ids = make_customers(400)
    broadcast = BroadcastFactory(segment=make_segment(ids), batch_size=20, rate_limit=100)
    broadcasts.start_broadcast(broadcast_id=broadcast.pk)
    wait_until(lambda: smtp.count() >= 60, timeout=60, interval=0.02)

    broadcasts.pause_broadcast(broadcast_id=broadcast.pk, reason="checking the copy")
    # Senders notice within a flush and hand back what they hold.
    wait_until(
        lambda: not Delivery.objects.filter(broadcast=broadcast, status="sending").exists(),
        timeout=30,
    )
    at_pause = smtp.count()
    time.sleep(1.5)
    assert smtp.count() == at_pause < 400

    broadcasts.resume_broadcast(broadcast_id=broadcast.pk)
    wait_until(lambda: smtp.count() >= at_pause + 60, timeout=60, interval=0.02)
    broadcasts.cancel_broadcast(broadcast_id=broadcast.pk, reason="wrong audience")
    time.sleep(1.5)
    done = finished(broadcast.pk, timeout=60, sweep_every=1.0)
    wait_until(
        lambda: (
            not Delivery.objects.filter(
                broadcast=broadcast, status__in=["queued", "sending"]
            ).exists()
        ),
        timeout=30,
    )
    done.refresh_from_db()
    sent = smtp.count()
    assert done.state == BroadcastState.CANCELLED
    assert at_pause + 60 <= sent < 400
    assert len(smtp.by_recipient()) == sent  # no duplicates
    statuses = Counter(Delivery.objects.filter(broadcast=broadcast).values_list("status", "reason"))
    assert statuses == {("sent", ""): sent, ("skipped", "cancelled"): 400 - sent}
    assert (done.sent, done.skipped, done.skipped_by_reason) == (
        sent,
        400 - sent,
        {"cancelled": 400 - sent},
    )


def test_one_rate_limit_is_shared_by_two_worker_processes(smtp, make_worker):
    limit, batch = 40, 10
    ids = make_customers(480)
    broadcast = BroadcastFactory(segment=make_segment(ids), batch_size=batch, rate_limit=limit)
    make_worker(concurrency=2)
    make_worker(concurrency=2)
    broadcasts.start_broadcast(broadcast_id=broadcast.pk)
    done = finished(broadcast.pk, timeout=120)
    assert done.state == BroadcastState.COMPLETED

    times = sorted(message.at for message in smtp.snapshot())
    assert len(times) == 480
    elapsed = times[-1] - times[0]
    measured = (len(times) - 1) / elapsed
    assert abs(measured - limit) <= 0.1 * limit, measured
    # The most messages seen in any one-second window (each message opens a window).
    busiest, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    # What the sink's own stalls bunched together is not the senders' doing.
    sink_bunching = math.ceil(limit * smtp.max_lag)
    assert busiest <= limit + batch + sink_bunching, (busiest, smtp.max_lag)

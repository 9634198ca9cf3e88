"""Sending: claim a batch atomically, send it concurrently under the shared rate limit, and
record every outcome with conditional UPDATEs.

- Claim: `UPDATE ... SET status='sending', attempts=attempts+1 ... FROM (SELECT ... FOR UPDATE
  SKIP LOCKED)` — two senders never hold the same row; the attempt number is the claim token.
- Send: a thread pool works through the batch; every message first reserves its slot in the
  shared rate-limit buckets (the broadcast's own, then the channel's) and sleeps until it.
- Record: outcomes are flushed in small groups, each flush one statement that moves the rows
  (only those still `sending` under this attempt) and adds to the broadcast's counters.
  Between flushes the main thread re-reads the broadcast's state: a pause or cancel stops the
  threads, and what they had not sent goes back to `queued` (or `skipped(cancelled)`).
- Transient errors go back to `queued` with exponential backoff; they count toward the
  provider's circuit breaker and the broadcast's auto-pause.

A message is marked `sent` right after the provider accepts it, a few at a time; a sender
killed in between leaves its claim to expire, and the message is sent again with the same
idempotency key (Message-ID for email). See docs/decisions/notifications-delivery.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import random
import threading
import time
import zoneinfo
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from notifications import circuit, ratelimit, rendering
from notifications.backends import (
    Backend,
    Message,
    PermanentFailure,
    Session,
    Skip,
    TransientFailure,
    get_backend,
)
from notifications.models import Broadcast, BroadcastState, Delivery, DeliveryStatus, SkipReason
from notifications.services.sql import cursor as statement_cursor
from segments.models import Customer

logger = structlog.get_logger(__name__)

# Outcomes are recorded this many at a time (or at least every FLUSH_SECONDS). Each flush is
# one statement whatever its size, and its latency under the batch's threads dominates the
# cost of a message; a crash leaves at most one unflushed group per batch in doubt.
FLUSH_EVERY = 100
FLUSH_SECONDS = 0.5
LATE_SLOT_SECONDS = 0.05


@dataclass(frozen=True)
class Claimed:
    id: int
    customer_id: int
    address: str
    attempts: int
    claimed_at: dt.datetime
    rendered: dict[str, Any] | None = None


@dataclass
class Outcome:
    delivery_id: int
    attempts: int
    status: str
    reason: str = ""
    error: str = ""
    provider_id: str = ""
    delay: float = 0.0
    release: bool = False
    provider_error: bool = False


@dataclass
class BatchReport:
    claimed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    state: str = ""
    # Seconds until the provider may be tried again (circuit open); None when not waiting.
    retry_in: float | None = None
    # The highest id claimed: where the loop's next claim starts.
    last_id: int = 0


def _tables() -> tuple[str, str]:
    return Delivery._meta.db_table, Broadcast._meta.db_table


# --- claiming ------------------------------------------------------------------------------


def claim_batch(*, broadcast_id: int, limit: int, after: int = 0) -> list[Claimed]:
    """Up to `limit` due queued rows, in id order from `after`: a sender loop passes the last
    id it claimed, so it does not walk the index entries of everything already sent."""
    deliveries, broadcasts = _tables()
    now = timezone.now()
    with statement_cursor() as cursor:
        cursor.execute(
            f"""
            WITH picked AS (
              SELECT id FROM {deliveries}
              WHERE broadcast_id = %s AND status = 'queued' AND id > %s
                AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
                AND EXISTS (SELECT 1 FROM {broadcasts} WHERE id = %s AND state = 'sending')
              ORDER BY id LIMIT %s
              FOR UPDATE SKIP LOCKED)
            UPDATE {deliveries} d
            SET status = 'sending', attempts = d.attempts + 1, claimed_at = %s, updated_at = %s
            FROM picked WHERE d.id = picked.id
            RETURNING d.id, d.customer_id, d.address, d.attempts, d.claimed_at""",  # noqa: S608  (table names from the models, values bound)
            [broadcast_id, after, now, broadcast_id, limit, now, now],
        )
        rows = cursor.fetchall()
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


def claim_single(*, delivery_id: int) -> Claimed | None:
    deliveries, _ = _tables()
    now = timezone.now()
    with statement_cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {deliveries} SET status = 'sending', attempts = attempts + 1,
                claimed_at = %s, updated_at = %s
            WHERE id = %s AND broadcast_id IS NULL AND status = 'queued'
              AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
            RETURNING id, customer_id, address, attempts, claimed_at, rendered""",  # noqa: S608  (table names from the models, values bound)
            [now, now, delivery_id, now],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    *columns, rendered = row
    # Raw cursors hand jsonb back as text (Django decodes JSONField values itself).
    # The row's columns in field order, then the rendered message.
    return Claimed(  # type: ignore[misc]
        *columns, rendered=json.loads(rendered) if isinstance(rendered, str) else rendered
    )


# --- recording -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FlushResult:
    recorded: int
    state: str
    error_count: int
    pause_after: int


def flush(
    outcomes: list[Outcome],
    *,
    broadcast_id: int | None,
    claimed_at: dt.datetime | None = None,
    renew: Sequence[int] = (),
) -> FlushResult:
    """Record outcomes and bump counters in one statement; renew the claims still in flight.

    Provider errors count toward the auto-pause only for messages claimed in the current
    sending period: errors that senders report after a pause must not pause it again.

    A row is still this sender's while `claimed_at` is set (only `sending` rows have it) and
    `attempts` is the number it claimed. The guard names no status on purpose: `status =
    'sending'` would let PostgreSQL, on the stale statistics of a big broadcast in flight,
    scan the partial index of every open delivery instead of looking up a hundred ids."""
    deliveries, broadcasts = _tables()
    now = timezone.now()
    columns = (
        [o.delivery_id for o in outcomes],
        [o.attempts for o in outcomes],
        [o.status for o in outcomes],
        [o.reason for o in outcomes],
        [o.error[:2000] for o in outcomes],
        [o.provider_id[:128] for o in outcomes],
        [o.delay for o in outcomes],
        [o.release for o in outcomes],
        [o.provider_error for o in outcomes],
    )
    with statement_cursor() as cursor:
        cursor.execute(
            f"""
            WITH u AS (
              SELECT * FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::text[],
                                   %s::text[], %s::float8[], %s::bool[], %s::bool[])
                AS u(id, attempts, status, reason, error, provider_id, delay, release,
                     provider_error)),
            cancelled AS (
              SELECT EXISTS (SELECT 1 FROM {broadcasts} WHERE id = %s AND state = 'cancelled')
                AS yes),
            done AS (
              UPDATE {deliveries} d SET
                status = CASE WHEN u.release AND (SELECT yes FROM cancelled) THEN 'skipped'
                              ELSE u.status END,
                reason = CASE WHEN u.release AND (SELECT yes FROM cancelled) THEN %s
                              ELSE u.reason END,
                error = CASE WHEN u.release THEN d.error ELSE u.error END,
                provider_message_id = CASE WHEN u.status = 'sent' THEN u.provider_id
                                           ELSE d.provider_message_id END,
                sent_at = CASE WHEN u.status = 'sent' THEN %s::timestamptz ELSE d.sent_at END,
                next_attempt_at = CASE WHEN u.delay > 0
                                       THEN %s::timestamptz + make_interval(secs => u.delay)
                                       ELSE NULL END,
                attempts = CASE WHEN u.release THEN d.attempts - 1 ELSE d.attempts END,
                claimed_at = NULL,
                updated_at = %s
              FROM u
              WHERE d.id = u.id AND d.attempts = u.attempts AND d.claimed_at IS NOT NULL
              RETURNING d.status, d.reason, u.provider_error),
            renewed AS (
              UPDATE {deliveries} SET claimed_at = %s
              WHERE id = ANY(%s::bigint[]) AND claimed_at IS NOT NULL RETURNING 1),
            skips AS (
              SELECT reason, count(*) AS n FROM done WHERE status = 'skipped' GROUP BY reason),
            counted AS (
              UPDATE {broadcasts} b SET
                sent = b.sent + (SELECT count(*) FROM done WHERE status = 'sent'),
                failed = b.failed + (SELECT count(*) FROM done WHERE status = 'failed'),
                skipped = b.skipped + coalesce((SELECT sum(n) FROM skips), 0),
                skipped_by_reason = b.skipped_by_reason || coalesce(
                  (SELECT jsonb_object_agg(
                      reason, coalesce((b.skipped_by_reason ->> reason)::bigint, 0) + n)
                   FROM skips), '{{}}'::jsonb),
                error_count = b.error_count + CASE
                  WHEN %s::timestamptz >= coalesce(b.sending_since, '-infinity'::timestamptz)
                  THEN (SELECT count(*) FROM done WHERE provider_error) ELSE 0 END,
                updated_at = %s
              WHERE b.id = %s
              RETURNING b.state, b.error_count, b.pause_after_errors)
            SELECT (SELECT count(*) FROM done), (SELECT state FROM counted),
                   (SELECT error_count FROM counted), (SELECT pause_after_errors FROM counted)
            """,  # noqa: S608  (table names from the models, values bound)
            [
                *columns,
                broadcast_id,
                SkipReason.CANCELLED.value,
                now,
                now,
                now,
                now,
                list(renew),
                claimed_at or now,
                now,
                broadcast_id,
            ],
        )
        recorded, state, error_count, pause_after = cursor.fetchone()
    return FlushResult(recorded, state or "", error_count or 0, pause_after or 0)


def retry_delay(attempts: int, retry_after: float | None) -> float:
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    delay = min(base, settings.NOTIFICATIONS_RETRY_MAX_SECONDS) * random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


# --- sending -------------------------------------------------------------------------------


def _send_one(session: Session, claimed: Claimed, message: Message) -> Outcome:
    try:
        provider_id = session.send(message)
    except Skip as skip:
        return Outcome(claimed.id, claimed.attempts, DeliveryStatus.SKIPPED, skip.reason, str(skip))
    except PermanentFailure as failure:
        return Outcome(
            claimed.id,
            claimed.attempts,
            DeliveryStatus.FAILED,
            failure.reason,
            str(failure),
            provider_error=failure.provider_fault,
        )
    except TransientFailure as failure:
        if claimed.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
            return Outcome(
                claimed.id,
                claimed.attempts,
                DeliveryStatus.FAILED,
                "retries_exhausted",
                f"{failure.reason}: {failure}",
                provider_error=True,
            )
        return Outcome(
            claimed.id,
            claimed.attempts,
            DeliveryStatus.QUEUED,
            "",
            f"{failure.reason}: {failure}",
            delay=retry_delay(claimed.attempts, failure.retry_after),
            provider_error=True,
        )
    except Exception as error:
        # A backend bug must not take the batch down with it: that message fails, loudly.
        logger.exception("backend_error", delivery=claimed.id)
        return Outcome(
            claimed.id, claimed.attempts, DeliveryStatus.FAILED, "backend_error", repr(error)
        )
    return Outcome(claimed.id, claimed.attempts, DeliveryStatus.SENT, provider_id=provider_id)


def release(claimed: Claimed) -> Outcome:
    return Outcome(claimed.id, claimed.attempts, DeliveryStatus.QUEUED, release=True)


class _Batch:
    """One claimed batch: worker threads send, the calling thread records and watches."""

    def __init__(
        self,
        *,
        backend: Backend,
        work: list[tuple[Claimed, Message]],
        buckets: list[tuple[str, float]],
        broadcast_id: int | None,
        claimed_at: dt.datetime,
        heartbeat: Callable[[], object] | None,
    ) -> None:
        self.backend = backend
        self.work: queue.SimpleQueue[tuple[Claimed, Message]] = queue.SimpleQueue()
        for item in work:
            self.work.put(item)
        self.pending = {claimed.id for claimed, _ in work}
        self.results: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.buckets = buckets
        self.broadcast_id = broadcast_id
        self.heartbeat = heartbeat
        self.claimed_at = claimed_at
        self.report = BatchReport()
        self.outcomes: list[Outcome] = []
        self.errors_lock = threading.Lock()
        self.consecutive_errors = 0
        self.threads = max(1, min(settings.NOTIFICATIONS_SEND_THREADS, len(work)))

    def _worker(self, session: Session) -> None:
        while not self.stop.is_set():
            try:
                claimed, message = self.work.get_nowait()
            except queue.Empty:
                return
            if not self._wait_for_slots():
                self.results.put(release(claimed))
                continue
            outcome = _send_one(session, claimed, message)
            self._watch_provider(outcome)
            self.results.put(outcome)

    def _wait_for_slots(self) -> bool:
        """Sleep until this message's slot in every bucket; False when the batch was stopped.

        A thread that wakes more than LATE_SLOT_SECONDS after its slot (its process stalled)
        gives the slot up and reserves a new one: sending at once would land in a burst with
        the threads that woke on time, and the provider would see more than the rate.
        """
        for bucket, per_second in self.buckets:
            while True:
                wait = ratelimit.reserve(bucket, per_second)
                due = time.monotonic() + wait
                if self.stop.wait(wait):
                    return False
                if time.monotonic() - due <= LATE_SLOT_SECONDS:
                    break
        return not self.stop.is_set()

    def _watch_provider(self, outcome: Outcome) -> None:
        """Stop the batch at once when the provider keeps failing: connection refusals are
        instant, and the shared circuit only hears of them at the next flush."""
        with self.errors_lock:
            if outcome.provider_error:
                self.consecutive_errors += 1
                if self.consecutive_errors >= settings.NOTIFICATIONS_CIRCUIT_THRESHOLD:
                    self.stop.set()
            elif outcome.status == DeliveryStatus.SENT:
                self.consecutive_errors = 0

    def run(self) -> BatchReport:
        with self.backend.open() as session, ThreadPoolExecutor(self.threads) as pool:
            futures = [pool.submit(self._worker, session) for _ in range(self.threads)]
            outcomes: list[Outcome] = []
            last = time.monotonic()
            try:
                while True:
                    finished = all(future.done() for future in futures)
                    with contextlib.suppress(queue.Empty):
                        outcomes.append(self.results.get(timeout=0.05))
                    if finished and self.results.empty():
                        break
                    if len(outcomes) >= FLUSH_EVERY or time.monotonic() - last >= FLUSH_SECONDS:
                        self.record(outcomes)
                        outcomes = []
                        last = time.monotonic()
            except BaseException:
                # Recording failed: stop the threads now. Left running they would send the
                # rest of the batch, unrecorded, and all of it would be sent again once the
                # claims expire (the reliability soak measured ~200 resends per cut session).
                self.stop.set()
                raise
            for future in futures:
                future.result()
        while True:
            try:
                outcomes.append(release(self.work.get_nowait()[0]))
            except queue.Empty:
                break
        self.record(outcomes)
        return self.report

    def _flush(self, outcomes: list[Outcome]) -> FlushResult:
        return flush(
            outcomes,
            broadcast_id=self.broadcast_id,
            claimed_at=self.claimed_at,
            renew=sorted(self.pending),
        )

    def record(self, outcomes: list[Outcome]) -> None:
        """Flush outcomes (or, with none, just renew the claims and look at the state)."""
        self.outcomes.extend(outcomes)
        for outcome in outcomes:
            self.pending.discard(outcome.delivery_id)
            if not outcome.release:
                key = "retry" if outcome.status == DeliveryStatus.QUEUED else outcome.status
                self.report.counts[key] = self.report.counts.get(key, 0) + 1
        if outcomes:
            try:
                result = self._flush(outcomes)
            except (OperationalError, InterfaceError):
                # The session was cut (database restart, failover): these messages are out,
                # so record them on a new connection rather than send them again later. The
                # flush only moves rows still `sending` under this attempt: it is safe twice.
                connection.close()
                result = self._flush(outcomes)
            state, error_count, pause_after = result.state, result.error_count, result.pause_after
        else:
            state, error_count, pause_after = renew_claims(
                broadcast_id=self.broadcast_id, ids=sorted(self.pending)
            )
        if self.heartbeat is not None:
            self.heartbeat()
        errors = sum(1 for outcome in outcomes if outcome.provider_error)
        if errors and circuit.record_errors(self.backend.key, errors):
            logger.warning("circuit_opened", channel=self.backend.key)
        elif not errors and any(outcome.status == DeliveryStatus.SENT for outcome in outcomes):
            circuit.record_success(self.backend.key)
        if self.broadcast_id is None:
            return
        self.report.state = state
        if state != BroadcastState.SENDING:
            self.stop.set()
        elif error_count >= pause_after > 0:
            from notifications.services.broadcasts import pause_for_errors

            pause_for_errors(broadcast_id=self.broadcast_id, errors=error_count)
            self.report.state = BroadcastState.PAUSED
            self.stop.set()
        elif circuit.open_for(self.backend.key):
            self.stop.set()


def renew_claims(*, broadcast_id: int | None, ids: list[int]) -> tuple[str, int, int]:
    """Keep this sender's claims alive; returns the broadcast's (state, errors, pause_after)."""
    if ids:
        Delivery.objects.filter(pk__in=ids, claimed_at__isnull=False).update(
            claimed_at=timezone.now()
        )
    if broadcast_id is None:
        return "", 0, 0
    row = (
        Broadcast.objects.filter(pk=broadcast_id)
        .values_list("state", "error_count", "pause_after_errors")
        .first()
    )
    return row or ("", 0, 0)


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


def _buckets(channel: str, broadcast: Broadcast | None) -> list[tuple[str, float]]:
    buckets = []
    if broadcast is not None and broadcast.rate_limit:
        buckets.append((f"broadcast:{broadcast.pk}", float(broadcast.rate_limit)))
    channel_rate = settings.NOTIFICATIONS_RATE_LIMITS.get(channel)
    if channel_rate:
        buckets.append((f"channel:{channel}", float(channel_rate)))
    return buckets


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
    batch = _Batch(
        backend=backend,
        work=work,
        buckets=_buckets(backend.key, broadcast),
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
    batch = _Batch(
        backend=backend,
        work=[(claimed, message)],
        buckets=_buckets(backend.key, None),
        broadcast_id=None,
        claimed_at=claimed.claimed_at,
        heartbeat=None,
    )
    batch.run()
    return batch.outcomes[-1] if batch.outcomes else None

"""Sending one claimed batch: worker threads send concurrently under the shared rate limit, the
calling thread records their outcomes and watches the broadcast.

- Send: a thread pool works through the batch; every message first reserves its slot in the
  shared rate-limit buckets (the broadcast's own, then the channel's) and sleeps until it.
- Record: outcomes are flushed in small groups (`deliveries.flush`). Between flushes the main
  thread re-reads the broadcast's state: a pause or cancel stops the threads, and what they had
  not sent goes back to `queued` (or `skipped(cancelled)`).
- Transient errors go back to `queued` with exponential backoff; they count toward the
  provider's circuit breaker and the broadcast's auto-pause.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from redis.exceptions import RedisError

from notifications import circuit, ratelimit
from notifications.backends import (
    Backend,
    Message,
    PermanentFailure,
    Session,
    Skip,
    TransientFailure,
)
from notifications.models import Broadcast, BroadcastState, DeliveryStatus
from notifications.services.deliveries import Claimed, FlushResult, Outcome, flush, renew_claims
from notifications.services.transitions import pause_for_errors

logger = structlog.get_logger(__name__)

# Outcomes are recorded this many at a time (or at least every FLUSH_SECONDS). Each flush is
# one statement whatever its size, and its latency under the batch's threads dominates the
# cost of a message; a crash leaves at most one unflushed group per batch in doubt.
FLUSH_EVERY = 100
FLUSH_SECONDS = 0.5
LATE_SLOT_SECONDS = 0.05


@dataclass
class BatchReport:
    claimed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    state: str = ""
    # Seconds until the provider may be tried again (circuit open); None when not waiting.
    retry_in: float | None = None
    # The highest id claimed: where the loop's next claim starts.
    last_id: int = 0


def retry_delay(attempts: int, retry_after: float | None) -> float:
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    delay = min(base, settings.NOTIFICATIONS_RETRY_MAX_SECONDS) * random.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


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
        if claimed.provider_attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
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
            delay=retry_delay(claimed.provider_attempts, failure.retry_after),
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


class Batch:
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
            try:
                reserved = self._wait_for_slots()
            except RedisError:
                # The shared rate limit is out of reach (Redis restarting): nothing is sent
                # unmetered. The batch stops and hands its messages back, unattempted.
                logger.warning("rate_limit_unreachable", delivery=claimed.id)
                self.stop.set()
                reserved = False
            if not reserved:
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
        try:
            self._share(outcomes)
        except RedisError:
            # The loop's lease and the circuit live in Redis. While it restarts the batch stops:
            # its outcomes are in PostgreSQL, what it has not sent goes back unattempted.
            logger.warning("shared_state_unreachable", broadcast=self.broadcast_id)
            self.stop.set()
        if self.broadcast_id is None:
            return
        self.report.state = state
        if state != BroadcastState.SENDING:
            self.stop.set()
        elif error_count >= pause_after > 0:
            pause_for_errors(broadcast_id=self.broadcast_id, errors=error_count)
            self.report.state = BroadcastState.PAUSED
            self.stop.set()
        elif self._circuit_open():
            self.stop.set()

    def _share(self, outcomes: list[Outcome]) -> None:
        """Renew the loop's lease and tell the provider's circuit what this flush saw."""
        if self.heartbeat is not None:
            self.heartbeat()
        errors = sum(1 for outcome in outcomes if outcome.provider_error)
        if errors and circuit.record_errors(self.backend.key, errors):
            logger.warning("circuit_opened", channel=self.backend.key)
        elif not errors and any(outcome.status == DeliveryStatus.SENT for outcome in outcomes):
            circuit.record_success(self.backend.key)

    def _circuit_open(self) -> bool:
        try:
            return bool(circuit.open_for(self.backend.key))
        except RedisError:
            return True


def rate_buckets(channel: str, broadcast: Broadcast | None) -> list[tuple[str, float]]:
    """The shared rate-limit buckets a message takes a slot in: its broadcast's, its channel's."""
    buckets = []
    if broadcast is not None and broadcast.rate_limit:
        buckets.append((f"broadcast:{broadcast.pk}", float(broadcast.rate_limit)))
    channel_rate = settings.NOTIFICATIONS_RATE_LIMITS.get(channel)
    if channel_rate:
        buckets.append((f"channel:{channel}", float(channel_rate)))
    return buckets

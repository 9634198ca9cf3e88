"""Moving deliveries through their states in SQL: claim, record outcomes, renew claims, skip a
cancelled broadcast's queue.

- Claim: `UPDATE ... SET status='sending', attempts=attempts+1 ... FROM (SELECT ... FOR UPDATE
  SKIP LOCKED)`: two senders never hold the same row; the attempt number is the claim token.
- Record: one statement moves the rows (only those still claimed under this attempt) and adds
  to the broadcast's counters.

Every DeliveryStatus is either open (`OPEN_STATUSES`: claimed from `queued`, held as `sending`)
or finished and counted on the broadcast (`FINISHED_COUNTERS`); tests/notifications/
test_sql_contract.py fails when a new status is neither.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from psycopg import sql

from notifications.models import Broadcast, Delivery, DeliveryStatus, SkipReason
from notifications.services.sql import compose_statement, cursor, render

# A finished delivery adds one to this counter (a Broadcast field) of its broadcast.
FINISHED_COUNTERS: dict[DeliveryStatus, str] = {
    DeliveryStatus.SENT: "sent",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.SKIPPED: "skipped",
}


@dataclass(frozen=True)
class Claimed:
    id: int
    customer_id: int
    address: str
    attempts: int
    claimed_at: dt.datetime
    lost_claims: int = 0
    rendered: dict[str, Any] | None = None

    @property
    def provider_attempts(self) -> int:
        """Times the provider was (or is now being) asked: claims lost with a dead sender
        never reached it."""
        return self.attempts - self.lost_claims


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
    # The sender holding the claim died: back to queued, counted in `lost_claims`.
    lost: bool = False


@dataclass(frozen=True)
class FlushResult:
    recorded: int
    state: str
    error_count: int
    pause_after: int


# --- claiming ------------------------------------------------------------------------------


@functools.cache
def _claim_batch_sql() -> str:
    return render(
        compose_statement(
            """
            WITH picked AS (
              SELECT {d_id} FROM {deliveries}
              WHERE {d_broadcast_id} = %s AND {d_status} = {status_queued} AND {d_id} > %s
                AND ({d_next_attempt_at} IS NULL OR {d_next_attempt_at} <= %s)
                AND EXISTS (SELECT 1 FROM {broadcasts}
                            WHERE {b_id} = %s AND {b_state} = {state_sending})
              ORDER BY {d_id} LIMIT %s
              FOR UPDATE SKIP LOCKED)
            UPDATE {deliveries} d
            SET {d_status} = {status_sending}, {d_attempts} = d.{d_attempts} + 1,
                {d_claimed_at} = %s, {d_updated_at} = %s
            FROM picked WHERE d.{d_id} = picked.{d_id}
            RETURNING d.{d_id}, d.{d_customer_id}, d.{d_address}, d.{d_attempts},
                      d.{d_claimed_at}, d.{d_lost_claims}"""
        )
    )


def claim_batch(*, broadcast_id: int, limit: int, after: int = 0) -> list[Claimed]:
    """Up to `limit` due queued rows, in id order from `after`: a sender loop passes the last
    id it claimed, so it does not walk the index entries of everything already sent."""
    now = timezone.now()
    with cursor() as opened:
        opened.execute(
            _claim_batch_sql(), [broadcast_id, after, now, broadcast_id, limit, now, now]
        )
        rows = opened.fetchall()
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


@functools.cache
def _claim_single_sql() -> str:
    return render(
        compose_statement(
            """
            UPDATE {deliveries} SET {d_status} = {status_sending}, {d_attempts} = {d_attempts} + 1,
                {d_claimed_at} = %s, {d_updated_at} = %s
            WHERE {d_id} = %s AND {d_broadcast_id} IS NULL AND {d_status} = {status_queued}
              AND ({d_next_attempt_at} IS NULL OR {d_next_attempt_at} <= %s)
            RETURNING {d_id}, {d_customer_id}, {d_address}, {d_attempts}, {d_claimed_at},
                      {d_lost_claims}, {d_rendered}"""
        )
    )


def claim_single(*, delivery_id: int) -> Claimed | None:
    now = timezone.now()
    with cursor() as opened:
        opened.execute(_claim_single_sql(), [now, now, delivery_id, now])
        row = opened.fetchone()
    if row is None:
        return None
    *columns, rendered = row
    # Raw cursors hand jsonb back as text (Django decodes JSONField values itself).
    # The row's columns in field order, then the rendered message.
    return Claimed(  # type: ignore[misc]
        *columns, rendered=json.loads(rendered) if isinstance(rendered, str) else rendered
    )


# --- recording -----------------------------------------------------------------------------


@functools.cache
def _flush_sql() -> str:
    counters = sql.SQL(",\n").join(
        compose_statement(
            "{counter} = b.{counter} + (SELECT count(*) FROM done WHERE {d_status} = {status})",
            counter=sql.Identifier(Broadcast._meta.get_field(counter).column),
            status=sql.Literal(status.value),
        )
        for status, counter in FINISHED_COUNTERS.items()
    )
    return render(
        compose_statement(
            """
            WITH u AS (
              SELECT * FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::text[],
                                   %s::text[], %s::float8[], %s::bool[], %s::bool[],
                                   %s::bool[])
                AS u(id, attempts, status, reason, error, provider_id, delay, release,
                     provider_error, lost)),
            cancelled AS (
              SELECT EXISTS (SELECT 1 FROM {broadcasts}
                             WHERE {b_id} = %s AND {b_state} = {state_cancelled}) AS yes),
            done AS (
              UPDATE {deliveries} d SET
                {d_status} = CASE WHEN u.release AND (SELECT yes FROM cancelled)
                                  THEN {status_skipped} ELSE u.status END,
                {d_reason} = CASE WHEN u.release AND (SELECT yes FROM cancelled) THEN %s
                                  ELSE u.reason END,
                {d_error} = CASE WHEN u.release THEN d.{d_error} ELSE u.error END,
                {d_provider_message_id} = CASE WHEN u.status = {status_sent} THEN u.provider_id
                                               ELSE d.{d_provider_message_id} END,
                {d_sent_at} = CASE WHEN u.status = {status_sent} THEN %s::timestamptz
                                   ELSE d.{d_sent_at} END,
                {d_next_attempt_at} = CASE WHEN u.delay > 0
                                           THEN %s::timestamptz + make_interval(secs => u.delay)
                                           ELSE NULL END,
                {d_attempts} = CASE WHEN u.release THEN d.{d_attempts} - 1
                                    ELSE d.{d_attempts} END,
                {d_lost_claims} = d.{d_lost_claims} + CASE WHEN u.lost THEN 1 ELSE 0 END,
                {d_claimed_at} = NULL,
                {d_updated_at} = %s
              FROM u
              WHERE d.{d_id} = u.id AND d.{d_attempts} = u.attempts
                AND d.{d_claimed_at} IS NOT NULL
              RETURNING d.{d_status}, d.{d_reason}, u.provider_error),
            renewed AS (
              UPDATE {deliveries} SET {d_claimed_at} = %s
              WHERE {d_id} = ANY(%s::bigint[]) AND {d_claimed_at} IS NOT NULL RETURNING 1),
            skips AS (
              SELECT {d_reason}, count(*) AS n FROM done WHERE {d_status} = {status_skipped}
              GROUP BY {d_reason}),
            counted AS (
              UPDATE {broadcasts} b SET
                {counters},
                {b_skipped_by_reason} = b.{b_skipped_by_reason} || coalesce(
                  (SELECT jsonb_object_agg(
                      {d_reason}, coalesce((b.{b_skipped_by_reason} ->> {d_reason})::bigint, 0) + n)
                   FROM skips), '{{}}'::jsonb),
                {b_error_count} = b.{b_error_count} + CASE
                  WHEN %s::timestamptz >= coalesce(b.{b_sending_since}, '-infinity'::timestamptz)
                  THEN (SELECT count(*) FROM done WHERE provider_error) ELSE 0 END,
                {b_updated_at} = %s
              WHERE b.{b_id} = %s
              RETURNING b.{b_state}, b.{b_error_count}, b.{b_pause_after_errors})
            SELECT (SELECT count(*) FROM done), (SELECT {b_state} FROM counted),
                   (SELECT {b_error_count} FROM counted),
                   (SELECT {b_pause_after_errors} FROM counted)
            """,
            counters=counters,
        )
    )


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
        [o.lost for o in outcomes],
    )
    with cursor() as opened:
        opened.execute(
            _flush_sql(),
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
        recorded, state, error_count, pause_after = opened.fetchone()
    return FlushResult(recorded, state or "", error_count or 0, pause_after or 0)


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


# --- cancelling ----------------------------------------------------------------------------


@functools.cache
def _skip_cancelled_sql() -> str:
    return render(
        compose_statement(
            """
            WITH picked AS (
              SELECT {d_id} FROM {deliveries}
              WHERE {d_broadcast_id} = %s AND {d_status} = {status_queued}
                AND EXISTS (SELECT 1 FROM {broadcasts}
                            WHERE {b_id} = %s AND {b_state} = {state_cancelled})
              ORDER BY {d_id} LIMIT %s FOR UPDATE SKIP LOCKED),
            done AS (
              UPDATE {deliveries} d
              SET {d_status} = {status_skipped}, {d_reason} = %s, {d_updated_at} = now()
              FROM picked WHERE d.{d_id} = picked.{d_id} RETURNING 1),
            counted AS (
              UPDATE {broadcasts} b SET
                {b_skipped} = b.{b_skipped} + (SELECT count(*) FROM done),
                {b_skipped_by_reason} = jsonb_set(
                  b.{b_skipped_by_reason}, ARRAY[%s],
                  to_jsonb(coalesce((b.{b_skipped_by_reason} ->> %s)::bigint, 0)
                           + (SELECT count(*) FROM done)))
              WHERE b.{b_id} = %s AND (SELECT count(*) FROM done) > 0 RETURNING 1)
            SELECT count(*) FROM done"""
        )
    )


def skip_cancelled(*, broadcast_id: int, limit: int) -> int:
    """Up to `limit` queued deliveries of a cancelled broadcast become skipped(cancelled)."""
    reason = SkipReason.CANCELLED.value
    with cursor() as opened:
        opened.execute(
            _skip_cancelled_sql(),
            [broadcast_id, broadcast_id, limit, reason, reason, reason, broadcast_id],
        )
        return opened.fetchone()[0]

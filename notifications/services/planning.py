"""Planning: a page of a segment becomes Delivery rows in ONE statement.

    WITH page AS (<the segment's members after the cursor, by id, LIMIT n>),
         cand AS (<each member's address and skip reason, decided in SQL>),
         ins  AS (INSERT INTO delivery ... SELECT ... ON CONFLICT DO NOTHING RETURNING ...),
         upd  AS (UPDATE broadcast SET cursor, planned/skipped counters ...)
    SELECT ...

The cursor and the counters move in the same statement as the rows they describe, under the
broadcast's row lock, so a planner killed at any point resumes exactly where the database
says it stopped, and a planner run twice inserts nothing twice (unique broadcast+customer).

Skip reasons, first match wins: unsubscribed, no_consent, no_address, quiet_hours (now, in the
customer's own timezone), frequency_cap (N marketing messages within the window across
broadcasts, counted from committed deliveries), duplicate_address (an earlier customer of this
broadcast has the same address). A birthday occurrence plans only the customers whose local
send instant falls in its window; members with no valid birthday are recorded once, on the
standing broadcast, as skipped with `no_birthday` or `invalid_birthday`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import GambitError
from notifications.backends import backend_class
from notifications.models import Broadcast, BroadcastState, Delivery, DeliveryStatus, SkipReason
from notifications.services.sql import cursor as statement_cursor
from segments.models import Customer

logger = structlog.get_logger(__name__)


@functools.cache
def known_timezones() -> tuple[str, ...]:
    """PostgreSQL's own zone names: a customer zone outside them would make AT TIME ZONE fail."""
    with connection.cursor() as tz_cursor:
        tz_cursor.execute("SELECT array_agg(name) FROM pg_timezone_names")
        return tuple(tz_cursor.fetchone()[0])


@dataclass(frozen=True)
class BirthdayWindow:
    """Send to customers whose local `hour`:00 on their birthday is in (start, end]."""

    start: dt.datetime
    end: dt.datetime
    hour: int
    # The standing broadcast that records members with no valid birthday (once each).
    parent_id: int


@dataclass(frozen=True)
class Policy:
    channel: str
    default_timezone: str
    now: dt.datetime
    frequency_cap: int | None = None
    frequency_window: dt.timedelta = dt.timedelta(hours=24)
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    dedupe_addresses: bool = True
    birthday: BirthdayWindow | None = None

    @classmethod
    def for_broadcast(cls, broadcast: Broadcast, *, now: dt.datetime) -> Policy:
        birthday = None
        if broadcast.parent_id and broadcast.window_start and broadcast.occurrence:
            parent = broadcast.parent
            if parent is not None and parent.birthday_hour is not None:
                birthday = BirthdayWindow(
                    start=broadcast.window_start,
                    end=broadcast.occurrence,
                    hour=parent.birthday_hour,
                    parent_id=parent.pk,
                )
        return cls(
            channel=broadcast.template.channel,
            default_timezone=broadcast.timezone,
            now=now,
            frequency_cap=broadcast.frequency_cap,
            frequency_window=broadcast.frequency_window,
            quiet_start=broadcast.quiet_start,
            quiet_end=broadcast.quiet_end,
            birthday=birthday,
        )

    @property
    def needs_timezone(self) -> bool:
        return self.birthday is not None or (
            self.quiet_start is not None and self.quiet_end is not None
        )


class _Sql:
    """SQL text and its positional parameters, built in order."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, text: str, *params: Any) -> _Sql:
        self.parts.append(text)
        self.params.extend(params)
        return self

    @property
    def text(self) -> str:
        return "\n".join(self.parts)


def _address_expr(channel: str) -> str:
    column = f"c.{backend_class(channel).address_field}"
    return f"lower(btrim({column}))" if channel == "email" else f"btrim({column})"


def _consent_expr(channel: str) -> str:
    consent = backend_class(channel).consent_field
    return f"c.{consent}" if consent else "TRUE"


def _birthday_match(sql: _Sql, window: BirthdayWindow) -> None:
    """The customer's local hour:00 on one of the (at most two) local dates the window touches
    is inside the window, and that date is their birthday. 29 February birthdays are greeted
    on 28 February in years without a 29 February."""
    sql.add(
        """EXISTS (
          SELECT 1 FROM (VALUES ((%s::timestamptz AT TIME ZONE z.tz)::date),
                                ((%s::timestamptz AT TIME ZONE z.tz)::date)) AS v(d)
          WHERE ((v.d + make_time(%s, 0, 0)) AT TIME ZONE z.tz) > %s::timestamptz
            AND ((v.d + make_time(%s, 0, 0)) AT TIME ZONE z.tz) <= %s::timestamptz
            AND (
              (extract(month FROM c.birthday) = extract(month FROM v.d)
               AND extract(day FROM c.birthday) = extract(day FROM v.d))
              OR (extract(month FROM c.birthday) = 2 AND extract(day FROM c.birthday) = 29
                  AND extract(month FROM v.d) = 2 AND extract(day FROM v.d) = 28
                  AND extract(day FROM make_date(extract(year FROM v.d)::int, 3, 1) - 1) = 28)
            )
        )""",
        window.start,
        window.end,
        window.hour,
        window.start,
        window.hour,
        window.end,
    )


def _candidates(sql: _Sql, policy: Policy, *, broadcast_id: int | None) -> None:
    """`cand(customer_id, address, reason)` for every customer in `page`."""
    address = _address_expr(policy.channel)
    sql.add(f"cand AS MATERIALIZED (SELECT c.id AS customer_id, {address} AS address, CASE")
    sql.add("WHEN c.unsubscribed_at IS NOT NULL THEN %s", SkipReason.UNSUBSCRIBED.value)
    sql.add(f"WHEN NOT {_consent_expr(policy.channel)} THEN %s", SkipReason.NO_CONSENT.value)
    sql.add(f"WHEN {address} = '' THEN %s", SkipReason.NO_ADDRESS.value)
    if policy.quiet_start is not None and policy.quiet_end is not None:
        local = "(%s::timestamptz AT TIME ZONE z.tz)::time"
        joiner = "AND" if policy.quiet_start < policy.quiet_end else "OR"
        sql.add(
            f"WHEN ({local} >= %s {joiner} {local} < %s) THEN %s",
            policy.now,
            policy.quiet_start,
            policy.now,
            policy.quiet_end,
            SkipReason.QUIET_HOURS.value,
        )
    if policy.frequency_cap is not None:
        table = Delivery._meta.db_table
        sql.add(
            f"""WHEN (SELECT count(*) FROM (SELECT 1 FROM {table} d
                   WHERE d.customer_id = c.id AND d.counts_toward_cap
                     AND d.status IN ('queued', 'sending', 'sent')
                     AND d.created_at > %s::timestamptz - %s::interval
                     AND d.broadcast_id IS DISTINCT FROM %s
                   LIMIT %s) AS recent) >= %s THEN %s""",  # noqa: S608  (table names from the models, values bound)
            policy.now,
            policy.frequency_window,
            broadcast_id,
            policy.frequency_cap,
            policy.frequency_cap,
            SkipReason.FREQUENCY_CAP.value,
        )
    sql.add("ELSE '' END AS reason")
    sql.add(f"FROM page JOIN {Customer._meta.db_table} c ON c.id = page.id")
    if policy.needs_timezone:
        sql.add(
            "CROSS JOIN LATERAL (SELECT CASE WHEN c.timezone IN (SELECT unnest(%s::text[])) "
            "THEN c.timezone ELSE %s END AS tz) AS z",
            list(known_timezones()),
            policy.default_timezone,
        )
    if policy.birthday is not None:
        sql.add("WHERE c.birthday IS NOT NULL AND")
        _birthday_match(sql, policy.birthday)
    sql.add(")")


def _ranked(sql: _Sql, policy: Policy, *, broadcast_id: int | None) -> None:
    """One message per address: a later customer sharing an address with an earlier one (in
    this page, or in a page planned before) is skipped."""
    if not policy.dedupe_addresses or broadcast_id is None:
        sql.add(", ranked AS (SELECT customer_id, address, reason FROM cand)")
        return
    table = Delivery._meta.db_table
    # A LATERAL probe with LIMIT 1 runs per candidate on the (address, broadcast) index; as a
    # plain EXISTS the planner may hash every earlier delivery of the broadcast once per page,
    # which makes planning quadratic in the segment's size.
    sql.add(
        f""", ranked AS (
          SELECT cand.customer_id, cand.address,
            CASE WHEN cand.reason = '' AND (
                row_number() OVER (PARTITION BY cand.reason = '', cand.address
                                   ORDER BY cand.customer_id) > 1
                OR coalesce(earlier.found, false))
              THEN %s ELSE cand.reason END AS reason
          FROM cand
          LEFT JOIN LATERAL (
            SELECT true AS found FROM {table} d
            WHERE d.address = cand.address AND d.broadcast_id = %s AND d.status <> 'skipped'
            LIMIT 1) AS earlier ON cand.reason = '')""",  # noqa: S608  (table names from the models, values bound)
        SkipReason.DUPLICATE_ADDRESS.value,
        broadcast_id,
    )


def _insert(
    sql: _Sql,
    policy: Policy,
    *,
    broadcast_id: int | None,
    source_key: str = "",
    rendered: dict | None = None,
    counts_toward_cap: bool = True,
) -> None:
    table = Delivery._meta.db_table
    conflict = (
        "(broadcast_id, customer_id) WHERE broadcast_id IS NOT NULL"
        if broadcast_id is not None
        else "(source_key) WHERE broadcast_id IS NULL"
    )
    sql.add(
        f""", ins AS (
          INSERT INTO {table} (broadcast_id, customer_id, channel, address, status, reason,
              error, attempts, provider_message_id, source_key, rendered, counts_toward_cap,
              created_at, updated_at)
          SELECT %s, customer_id, %s, address,
              CASE WHEN reason = '' THEN %s ELSE %s END, reason,
              '', 0, '', %s, %s::jsonb, %s, %s, %s
          FROM ranked ORDER BY customer_id
          ON CONFLICT {conflict} DO NOTHING
          RETURNING id, status, reason)""",  # noqa: S608  (table names from the models, values bound)
        broadcast_id,
        policy.channel,
        DeliveryStatus.QUEUED.value,
        DeliveryStatus.SKIPPED.value,
        source_key,
        json.dumps(rendered) if rendered is not None else None,
        counts_toward_cap,
        policy.now,
        policy.now,
    )


def _no_birthday(sql: _Sql, window: BirthdayWindow, channel: str, now: dt.datetime) -> None:
    """Members with no valid birthday, recorded once on the standing broadcast."""
    table = Delivery._meta.db_table
    sql.add(
        f""", ins_parent AS (
          INSERT INTO {table} (broadcast_id, customer_id, channel, address, status, reason,
              error, attempts, provider_message_id, source_key, counts_toward_cap,
              created_at, updated_at)
          SELECT %s, c.id, %s, '', %s,
              CASE WHEN c.quality_flags @> '[{{"field": "birthday"}}]'::jsonb THEN %s ELSE %s END,
              '', 0, '', '', false, %s, %s
          FROM page JOIN {Customer._meta.db_table} c ON c.id = page.id
          WHERE c.birthday IS NULL
          ON CONFLICT (broadcast_id, customer_id) WHERE broadcast_id IS NOT NULL DO NOTHING
          RETURNING status, reason)""",  # noqa: S608  (table names from the models, values bound)
        window.parent_id,
        channel,
        DeliveryStatus.SKIPPED.value,
        SkipReason.INVALID_BIRTHDAY.value,
        SkipReason.NO_BIRTHDAY.value,
        now,
        now,
    )
    _skip_counts(sql, "ins_parent", "parent_agg")
    sql.add(
        f""", parent_upd AS (
          UPDATE {Broadcast._meta.db_table} b SET {_counter_assignments("ins_parent", "parent_agg")}
          WHERE b.id = %s RETURNING b.id)""",  # noqa: S608  (table names from the models, values bound)
        window.parent_id,
    )


def _skip_counts(sql: _Sql, source: str, name: str) -> None:
    sql.add(
        f""", {name} AS (SELECT reason, count(*) AS n FROM {source} WHERE status = %s
                         GROUP BY reason)""",  # noqa: S608  (table names from the models, values bound)
        DeliveryStatus.SKIPPED.value,
    )


def _counter_assignments(inserted: str, skips: str) -> str:
    """Counter updates relative to the row's own values: no read-modify-write in Python."""
    return f"""planned = b.planned + (SELECT count(*) FROM {inserted}),
            skipped = b.skipped + coalesce((SELECT sum(n) FROM {skips}), 0),
            skipped_by_reason = b.skipped_by_reason || coalesce(
              (SELECT jsonb_object_agg(
                  reason, coalesce((b.skipped_by_reason ->> reason)::bigint, 0) + n)
               FROM {skips}), '{{}}'::jsonb)"""  # noqa: S608  (table names from the models, values bound)


@dataclass(frozen=True)
class PageResult:
    members: int
    queued: int
    cursor: int
    done: bool


def plan_page(
    *, broadcast: Broadcast, page_sql: str, page_params: list[Any], page_size: int, now: dt.datetime
) -> PageResult:
    """Plan one page (call under the broadcast's row lock, in a transaction)."""
    policy = Policy.for_broadcast(broadcast, now=now)
    sql = _Sql().add("WITH page(id) AS MATERIALIZED (" + page_sql + "),", *page_params)
    _candidates(sql, policy, broadcast_id=broadcast.pk)
    _ranked(sql, policy, broadcast_id=broadcast.pk)
    _insert(sql, policy, broadcast_id=broadcast.pk)
    _skip_counts(sql, "ins", "agg")
    if policy.birthday is not None:
        _no_birthday(sql, policy.birthday, policy.channel, now)
    sql.add(
        f""", moved AS (
          UPDATE {Broadcast._meta.db_table} b SET {_counter_assignments("ins", "agg")},
            plan_cursor = coalesce((SELECT max(id) FROM page), b.plan_cursor),
            planned_at = CASE WHEN (SELECT count(*) FROM page) < %s THEN %s
                              ELSE b.planned_at END,
            updated_at = %s
          WHERE b.id = %s
          RETURNING b.plan_cursor, b.planned_at)
        SELECT (SELECT count(*) FROM page), (SELECT count(*) FROM ins WHERE status = %s),
               (SELECT plan_cursor FROM moved), (SELECT planned_at FROM moved)""",  # noqa: S608  (table names from the models, values bound)
        page_size,
        now,
        now,
        broadcast.pk,
        DeliveryStatus.QUEUED.value,
    )
    with statement_cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        members, queued, cursor_id, planned_at = cursor.fetchone()
    return PageResult(members=members, queued=queued, cursor=cursor_id, done=planned_at is not None)


@dataclass(frozen=True)
class SingleResult:
    delivery_id: int | None
    status: str
    reason: str


def plan_single(
    *,
    customer_id: int,
    policy: Policy,
    source_key: str,
    rendered: dict,
    counts_toward_cap: bool,
) -> SingleResult:
    """One transactional message through the same decisions as a broadcast's page."""
    sql = _Sql().add("WITH page AS (SELECT %s::bigint AS id),", customer_id)
    _candidates(sql, policy, broadcast_id=None)
    _ranked(sql, policy, broadcast_id=None)
    _insert(
        sql,
        policy,
        broadcast_id=None,
        source_key=source_key,
        rendered=rendered,
        counts_toward_cap=counts_toward_cap,
    )
    sql.add("SELECT id, status, reason FROM ins")
    with statement_cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        row = cursor.fetchone()
    if row is None:
        existing = Delivery.objects.filter(source_key=source_key, broadcast__isnull=True).first()
        if existing is None:
            return SingleResult(None, DeliveryStatus.SKIPPED, "")
        return SingleResult(existing.pk, existing.status, existing.reason)
    return SingleResult(row[0], row[1], row[2])


def plan_next_page(*, broadcast_id: int) -> str:
    """Plan the next page of a broadcast: "more", "done" (planning finished) or "stopped"
    (cancelled, finished, or failed because its segment cannot be read)."""
    from notifications.services.broadcasts import fail_broadcast
    from segments.selectors import segment_customers

    with transaction.atomic():
        broadcast = (
            Broadcast.objects.select_for_update(of=("self",))
            .select_related("template", "parent")
            .filter(pk=broadcast_id)
            .first()
        )
        if broadcast is None or broadcast.state not in (
            BroadcastState.SENDING,
            BroadcastState.PAUSED,
        ):
            return "stopped"
        if broadcast.planned_at is not None:
            return "done"
        page_size = settings.NOTIFICATIONS_PAGE_SIZE
        # A page is idempotent (the cursor moves with its rows), so its commit need not wait
        # for the WAL flush: a page lost in a database crash is planned again. Any later
        # synchronous commit (a sender's claim) flushes it first.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        try:
            with transaction.atomic():
                members = segment_customers(
                    segment_id=broadcast.segment_id, now=broadcast.started_at
                )
                page = (
                    members.filter(pk__gt=broadcast.plan_cursor)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:page_size]
                )
                page_sql, page_params = page.query.sql_with_params()
                result = plan_page(
                    broadcast=broadcast,
                    page_sql=page_sql,
                    page_params=list(page_params),
                    page_size=page_size,
                    now=timezone.now(),
                )
        except (GambitError, DatabaseError, ObjectDoesNotExist) as error:
            logger.warning("plan_failed", broadcast=broadcast_id, error=str(error))
            failure = str(error)
        else:
            logger.info(
                "page_planned",
                broadcast=broadcast_id,
                members=result.members,
                queued=result.queued,
                cursor=result.cursor,
            )
            return "done" if result.done else "more"
    fail_broadcast(
        broadcast_id=broadcast_id,
        reason=_("The segment could not be read: %(error)s") % {"error": failure[:200]},
    )
    return "stopped"

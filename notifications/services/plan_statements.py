"""The planning statements: a page of a segment becomes Delivery rows in ONE statement.

    WITH page AS (<the segment's members after the cursor, by id, LIMIT n>),
         cand AS (<each member's address and skip reason, decided in SQL>),
         ins  AS (INSERT INTO deliveries ... SELECT ... ON CONFLICT DO NOTHING RETURNING ...),
         moved AS (UPDATE broadcasts SET cursor, planned/skipped counters ...)
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

from django.db import connection
from psycopg import sql

from notifications.backends import backend_class
from notifications.models import Broadcast, ChannelKind, Delivery, DeliveryStatus, SkipReason
from notifications.services.sql import column, compose_statement, render
from segments.models import Customer

# Deliveries that count toward a customer's frequency cap: messages sent or on their way...
CAPPED_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.SENT)
# ...and those that do not, with why.
UNCAPPED_STATUSES = {
    DeliveryStatus.FAILED: "the customer never got the message",
    DeliveryStatus.SKIPPED: "the message was never sent",
}
# Delivery columns the planning INSERTs leave to the sequence or to NULL, and why; they write
# every other column (tests/notifications/test_sql_contract.py holds both to the model).
LEFT_TO_DEFAULTS = {
    "id": "numbered by its sequence",
    "next_attempt_at": "set when a failed attempt waits for its retry",
    "claimed_at": "set while a sender holds the delivery",
    "sent_at": "set when the provider accepts the message",
}


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


class Statement:
    """A statement composed part by part (see `services.sql`), with its parameters in order."""

    def __init__(self) -> None:
        self.parts: list[sql.Composable] = []
        self.params: list[Any] = []

    def add(self, template: str, *params: Any, **names: sql.Composable) -> Statement:
        self.parts.append(compose_statement(template, **names))
        self.params.extend(params)
        return self

    def add_verbatim(self, text: str, params: list[Any]) -> Statement:
        """SQL that Django compiled, with its own parameters; its braces are not placeholders."""
        self.parts.append(sql.SQL(text))
        self.params.extend(params)
        return self

    @property
    def text(self) -> str:
        return render(sql.SQL("\n").join(self.parts))


def _address_expr(channel: str) -> sql.Composable:
    address = sql.SQL("c.{}").format(column(Customer, backend_class(channel).address_field))
    if channel == ChannelKind.EMAIL:
        return sql.SQL("lower(btrim({}))").format(address)
    return sql.SQL("btrim({})").format(address)


def _consent_expr(channel: str) -> sql.Composable:
    consent = backend_class(channel).consent_field
    return sql.SQL("c.{}").format(column(Customer, consent)) if consent else sql.SQL("TRUE")


def _birthday_match(statement: Statement, window: BirthdayWindow) -> None:
    """The customer's local hour:00 on one of the (at most two) local dates the window touches
    is inside the window, and that date is their birthday. 29 February birthdays are greeted
    on 28 February in years without a 29 February."""
    statement.add(
        """EXISTS (
          SELECT 1 FROM (VALUES ((%s::timestamptz AT TIME ZONE z.tz)::date),
                                ((%s::timestamptz AT TIME ZONE z.tz)::date)) AS v(d)
          WHERE ((v.d + make_time(%s, 0, 0)) AT TIME ZONE z.tz) > %s::timestamptz
            AND ((v.d + make_time(%s, 0, 0)) AT TIME ZONE z.tz) <= %s::timestamptz
            AND (
              (extract(month FROM c.{c_birthday}) = extract(month FROM v.d)
               AND extract(day FROM c.{c_birthday}) = extract(day FROM v.d))
              OR (extract(month FROM c.{c_birthday}) = 2 AND extract(day FROM c.{c_birthday}) = 29
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


def _candidates(statement: Statement, policy: Policy, *, broadcast_id: int | None) -> None:
    """`cand(customer_id, address, reason)` for every customer in `page`."""
    address = _address_expr(policy.channel)
    statement.add(
        "cand AS MATERIALIZED (SELECT c.{c_id} AS customer_id, {address} AS address, CASE",
        address=address,
    )
    statement.add("WHEN c.{c_unsubscribed_at} IS NOT NULL THEN %s", SkipReason.UNSUBSCRIBED.value)
    statement.add(
        "WHEN NOT {consent} THEN %s",
        SkipReason.NO_CONSENT.value,
        consent=_consent_expr(policy.channel),
    )
    statement.add("WHEN {address} = '' THEN %s", SkipReason.NO_ADDRESS.value, address=address)
    if policy.quiet_start is not None and policy.quiet_end is not None:
        statement.add(
            "WHEN ({local} >= %s {joiner} {local} < %s) THEN %s",
            policy.now,
            policy.quiet_start,
            policy.now,
            policy.quiet_end,
            SkipReason.QUIET_HOURS.value,
            local=sql.SQL("(%s::timestamptz AT TIME ZONE z.tz)::time"),
            joiner=sql.SQL("AND" if policy.quiet_start < policy.quiet_end else "OR"),
        )
    if policy.frequency_cap is not None:
        statement.add(
            """WHEN (SELECT count(*) FROM (SELECT 1 FROM {deliveries} d
                   WHERE d.{d_customer_id} = c.{c_id} AND d.{d_counts_toward_cap}
                     AND d.{d_status} IN ({capped})
                     AND d.{d_created_at} > %s::timestamptz - %s::interval
                     AND d.{d_broadcast_id} IS DISTINCT FROM %s
                   LIMIT %s) AS recent) >= %s THEN %s""",
            policy.now,
            policy.frequency_window,
            broadcast_id,
            policy.frequency_cap,
            policy.frequency_cap,
            SkipReason.FREQUENCY_CAP.value,
            capped=sql.SQL(", ").join(sql.Literal(status.value) for status in CAPPED_STATUSES),
        )
    statement.add("ELSE '' END AS reason")
    statement.add("FROM page JOIN {customers} c ON c.{c_id} = page.id")
    if policy.needs_timezone:
        statement.add(
            "CROSS JOIN LATERAL (SELECT CASE WHEN c.{c_timezone} IN (SELECT unnest(%s::text[])) "
            "THEN c.{c_timezone} ELSE %s END AS tz) AS z",
            list(known_timezones()),
            policy.default_timezone,
        )
    if policy.birthday is not None:
        statement.add("WHERE c.{c_birthday} IS NOT NULL AND")
        _birthday_match(statement, policy.birthday)
    statement.add(")")


def _ranked(statement: Statement, policy: Policy, *, broadcast_id: int | None) -> None:
    """One message per address: a later customer sharing an address with an earlier one (in
    this page, or in a page planned before) is skipped."""
    if not policy.dedupe_addresses or broadcast_id is None:
        statement.add(", ranked AS (SELECT customer_id, address, reason FROM cand)")
        return
    # A LATERAL probe with LIMIT 1 runs per candidate on the (address, broadcast) index; as a
    # plain EXISTS the planner may hash every earlier delivery of the broadcast once per page,
    # which makes planning quadratic in the segment's size.
    statement.add(
        """, ranked AS (
          SELECT cand.customer_id, cand.address,
            CASE WHEN cand.reason = '' AND (
                row_number() OVER (PARTITION BY cand.reason = '', cand.address
                                   ORDER BY cand.customer_id) > 1
                OR coalesce(earlier.found, false))
              THEN %s ELSE cand.reason END AS reason
          FROM cand
          LEFT JOIN LATERAL (
            SELECT true AS found FROM {deliveries} d
            WHERE d.{d_address} = cand.address AND d.{d_broadcast_id} = %s
              AND d.{d_status} <> {status_skipped}
            LIMIT 1) AS earlier ON cand.reason = '')""",
        SkipReason.DUPLICATE_ADDRESS.value,
        broadcast_id,
    )


def _insert_deliveries(values: dict[str, str], **names: sql.Composable) -> sql.Composed:
    """`INSERT INTO deliveries (<columns>) SELECT <values>`, keyed by Delivery field name; each
    value is a template like every other (`%s` parameters in order, `{names}`)."""
    return compose_statement(
        "INSERT INTO {deliveries} ({columns})\n          SELECT {values}",
        columns=sql.SQL(", ").join(column(Delivery, name) for name in values),
        values=sql.SQL(", ").join(compose_statement(value, **names) for value in values.values()),
    )


def _insert(
    statement: Statement,
    policy: Policy,
    *,
    broadcast_id: int | None,
    source_key: str = "",
    rendered: dict | None = None,
    counts_toward_cap: bool = True,
) -> None:
    conflict = (
        "({d_broadcast_id}, {d_customer_id}) WHERE {d_broadcast_id} IS NOT NULL"
        if broadcast_id is not None
        else "({d_source_key}) WHERE {d_broadcast_id} IS NULL"
    )
    insert = _insert_deliveries(
        {
            "broadcast_id": "%s",
            "customer_id": "customer_id",
            "channel": "%s",
            "address": "address",
            "status": "CASE WHEN reason = '' THEN {status_queued} ELSE {status_skipped} END",
            "reason": "reason",
            "error": "''",
            "attempts": "0",
            "lost_claims": "0",
            "provider_message_id": "''",
            "source_key": "%s",
            "rendered": "%s::jsonb",
            "counts_toward_cap": "%s",
            "created_at": "%s",
            "updated_at": "%s",
        }
    )
    statement.add(
        """, ins AS (
          {insert}
          FROM ranked ORDER BY customer_id
          ON CONFLICT {conflict} DO NOTHING
          RETURNING {d_id}, {d_status}, {d_reason})""",
        broadcast_id,
        policy.channel,
        source_key,
        json.dumps(rendered) if rendered is not None else None,
        counts_toward_cap,
        policy.now,
        policy.now,
        insert=insert,
        conflict=compose_statement(conflict),
    )


def _no_birthday(
    statement: Statement, window: BirthdayWindow, channel: str, now: dt.datetime
) -> None:
    """Members with no valid birthday, recorded once on the standing broadcast."""
    insert = _insert_deliveries(
        {
            "broadcast_id": "%s",
            "customer_id": "c.{c_id}",
            "channel": "%s",
            "address": "''",
            "status": "{status_skipped}",
            "reason": "CASE WHEN c.{c_quality_flags} @> {birthday_flagged}::jsonb "
            "THEN %s ELSE %s END",
            "error": "''",
            "attempts": "0",
            "lost_claims": "0",
            "provider_message_id": "''",
            "source_key": "''",
            "rendered": "NULL",
            "counts_toward_cap": "false",
            "created_at": "%s",
            "updated_at": "%s",
        },
        birthday_flagged=sql.Literal(json.dumps([{"field": "birthday"}])),
    )
    statement.add(
        """, ins_parent AS (
          {insert}
          FROM page JOIN {customers} c ON c.{c_id} = page.id
          WHERE c.{c_birthday} IS NULL
          ON CONFLICT ({d_broadcast_id}, {d_customer_id}) WHERE {d_broadcast_id} IS NOT NULL
          DO NOTHING
          RETURNING {d_status}, {d_reason})""",
        window.parent_id,
        channel,
        SkipReason.INVALID_BIRTHDAY.value,
        SkipReason.NO_BIRTHDAY.value,
        now,
        now,
        insert=insert,
    )
    _skip_counts(statement, "ins_parent", "parent_agg")
    statement.add(
        """, parent_upd AS (
          UPDATE {broadcasts} b SET {assignments}
          WHERE b.{b_id} = %s RETURNING b.{b_id})""",
        window.parent_id,
        assignments=_counter_assignments("ins_parent", "parent_agg"),
    )


def _skip_counts(statement: Statement, source: str, name: str) -> None:
    statement.add(
        """, {name} AS (SELECT {d_reason}, count(*) AS n FROM {source}
                         WHERE {d_status} = {status_skipped} GROUP BY {d_reason})""",
        name=sql.Identifier(name),
        source=sql.Identifier(source),
    )


def _counter_assignments(inserted: str, skips: str) -> sql.Composed:
    """Counter updates relative to the row's own values: no read-modify-write in Python."""
    return compose_statement(
        """{b_planned} = b.{b_planned} + (SELECT count(*) FROM {inserted}),
            {b_skipped} = b.{b_skipped} + coalesce((SELECT sum(n) FROM {skips}), 0),
            {b_skipped_by_reason} = b.{b_skipped_by_reason} || coalesce(
              (SELECT jsonb_object_agg(
                  {d_reason}, coalesce((b.{b_skipped_by_reason} ->> {d_reason})::bigint, 0) + n)
               FROM {skips}), '{{}}'::jsonb)""",
        inserted=sql.Identifier(inserted),
        skips=sql.Identifier(skips),
    )


def page_statement(
    *, broadcast: Broadcast, page_sql: str, page_params: list[Any], page_size: int, now: dt.datetime
) -> Statement:
    """The one statement that plans a page (see the module's docstring)."""
    policy = Policy.for_broadcast(broadcast, now=now)
    statement = Statement().add("WITH page(id) AS MATERIALIZED (")
    statement.add_verbatim(page_sql, page_params).add("),")
    _candidates(statement, policy, broadcast_id=broadcast.pk)
    _ranked(statement, policy, broadcast_id=broadcast.pk)
    _insert(statement, policy, broadcast_id=broadcast.pk)
    _skip_counts(statement, "ins", "agg")
    if policy.birthday is not None:
        _no_birthday(statement, policy.birthday, policy.channel, now)
    statement.add(
        """, moved AS (
          UPDATE {broadcasts} b SET {assignments},
            {b_plan_cursor} = coalesce((SELECT max(id) FROM page), b.{b_plan_cursor}),
            {b_planned_at} = CASE WHEN (SELECT count(*) FROM page) < %s THEN %s
                                  ELSE b.{b_planned_at} END,
            {b_updated_at} = %s
          WHERE b.{b_id} = %s
          RETURNING b.{b_plan_cursor}, b.{b_planned_at})
        SELECT (SELECT count(*) FROM page),
               (SELECT count(*) FROM ins WHERE {d_status} = {status_queued}),
               (SELECT {b_plan_cursor} FROM moved), (SELECT {b_planned_at} FROM moved)""",
        page_size,
        now,
        now,
        broadcast.pk,
        assignments=_counter_assignments("ins", "agg"),
    )
    return statement


def single_statement(
    *,
    customer_id: int,
    policy: Policy,
    source_key: str,
    rendered: dict,
    counts_toward_cap: bool,
) -> Statement:
    """The one statement that records a transactional message's delivery."""
    statement = Statement().add("WITH page AS (SELECT %s::bigint AS id),", customer_id)
    _candidates(statement, policy, broadcast_id=None)
    _ranked(statement, policy, broadcast_id=None)
    _insert(
        statement,
        policy,
        broadcast_id=None,
        source_key=source_key,
        rendered=rendered,
        counts_toward_cap=counts_toward_cap,
    )
    return statement.add("SELECT {d_id}, {d_status}, {d_reason} FROM ins")

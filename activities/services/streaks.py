"""Streaks over local days: one conditional upsert per check-in, never read-modify-write.

The caller works out the local day (the customer's zone, or the activity's) from the event's
instant; the database only compares dates. A day is therefore a calendar day on the wall clock
whatever its length in hours (23 or 25 across a DST change), and an instant just before and
just after local midnight falls on two days. A second check-in on one day changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from activities.models import Streak
from core.timezones import UnknownTimezone, get_zone, to_local


@dataclass(frozen=True)
class StreakState:
    length: int
    best: int
    days: int
    # The write made `length` longer than any streak this customer had before in the activity.
    record: bool


def _names() -> dict[str, sql.Composable]:
    meta = Streak._meta
    names: dict[str, sql.Composable] = {"t": sql.Identifier(meta.db_table)}
    names.update({field.name: sql.Identifier(field.column) for field in meta.concrete_fields})
    return names


@functools.cache
def _check_in_statement() -> str:
    names = _names()
    # Inside DO UPDATE every right-hand side reads the row as it was, so `length` below is the
    # old length in each expression.
    grown = sql.SQL(
        "CASE WHEN {t}.{last_day} = EXCLUDED.{last_day} - 1 THEN {t}.{length} + 1 ELSE 1 END"
    ).format(**names)
    template = sql.SQL(
        "INSERT INTO {t} ({activity}, {customer}, {key}, {last_day}, {length}, {best}, {days}, "
        "{record}) VALUES (%s, %s, %s, %s, 1, 1, 1, true) "
        "ON CONFLICT ({activity}, {customer}, {key}) DO UPDATE SET "
        "{length} = {grown}, {best} = GREATEST({t}.{best}, {grown}), "
        "{record} = ({grown}) > {t}.{best}, "
        "{days} = {t}.{days} + 1, {last_day} = EXCLUDED.{last_day} "
        "WHERE {t}.{last_day} < EXCLUDED.{last_day} "
        "RETURNING {length}, {best}, {days}, {record}"
    )
    return template.format(**names, grown=grown).as_string(None)


@functools.cache
def _make_up_statement() -> str:
    template = (
        "UPDATE {t} SET {length} = {length} + 1, {best} = GREATEST({best}, {length} + 1), "
        "{record} = {length} + 1 > {best}, {days} = {days} + 1, {last_day} = {last_day} + 1 "
        "WHERE {activity} = %s AND {customer} = %s AND {key} = %s AND {last_day} = %s "
        "RETURNING {length}, {best}, {days}, {record}"
    )
    return sql.SQL(template).format(**_names()).as_string(None)


def local_day(*, instant: dt.datetime, customer_zone: str, activity_zone: str) -> dt.date:
    """The calendar day of `instant` in the customer's zone, or the activity's when the
    customer has none (or one that is not a zone)."""
    if customer_zone:
        try:
            return instant.astimezone(get_zone(customer_zone)).date()
        except UnknownTimezone:
            pass
    return to_local(instant, activity_zone).date()


def check_in(*, activity_id: int, customer_id: int, key: str, day: dt.date) -> StreakState | None:
    """Count `day`: the streak grows when the last day counted was the day before, else starts
    again at 1. None when `day` (or a later one) is already counted."""
    with connection.cursor() as cursor:
        cursor.execute(_check_in_statement(), [activity_id, customer_id, key, day])
        row = cursor.fetchone()
    return None if row is None else StreakState(*row)


def make_up(*, activity_id: int, customer_id: int, key: str, day: dt.date) -> StreakState | None:
    """Fill the day before `day` (补签) when it is the only day missed since the last one
    counted; None when there is nothing to fill."""
    with connection.cursor() as cursor:
        cursor.execute(
            _make_up_statement(), [activity_id, customer_id, key, day - dt.timedelta(days=2)]
        )
        row = cursor.fetchone()
    return None if row is None else StreakState(*row)


def cycle_day(*, length: int, cycle_days: int, repeat: bool) -> int:
    """Day of the current cycle: 1..cycle_days, repeating when the gameplay repeats."""
    if length == 0:
        return 0
    return (length - 1) % cycle_days + 1 if repeat else min(length, cycle_days)


def set_streak(
    *, activity_id: int, customer_id: int, key: str, length: int, last_day: dt.date
) -> None:
    """Put a customer at a given streak (dry-run from a state): `length` days up to `last_day`."""
    Streak.objects.update_or_create(
        activity_id=activity_id,
        customer_id=customer_id,
        key=key,
        defaults={
            "last_day": last_day,
            "length": length,
            "best": length,
            "days": length,
            "record": False,
        },
    )

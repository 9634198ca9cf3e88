"""Limits counted by one conditional upsert in the database, never read-modify-write."""

import datetime as dt
import zoneinfo

from django.db import connection, models

from activities.models import ParticipationCounter


class LimitPeriod(models.TextChoices):
    DAY = "day", "per customer per day"
    CUSTOMER = "customer", "per customer over the activity"
    ACTIVITY = "activity", "for all customers of the activity together"


def _scope_and_period(
    *, customer_id: int, per: LimitPeriod, now: dt.datetime, timezone_name: str
) -> tuple[str, str]:
    if per == LimitPeriod.ACTIVITY:
        return "all", "all"
    if per == LimitPeriod.DAY:
        local_day = now.astimezone(zoneinfo.ZoneInfo(timezone_name)).date()
        return f"c:{customer_id}", local_day.isoformat()
    return f"c:{customer_id}", "all"


def try_increment(
    *,
    activity_id: int,
    customer_id: int,
    key: str,
    per: LimitPeriod,
    limit: int,
    now: dt.datetime,
    timezone_name: str,
    amount: int = 1,
) -> bool:
    """Add `amount` unless that would pass `limit`; True when counted."""
    if amount > limit:
        return False
    scope, period = _scope_and_period(
        customer_id=customer_id, per=per, now=now, timezone_name=timezone_name
    )
    table = connection.ops.quote_name(ParticipationCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (activity_id, scope, key, period, count)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (activity_id, scope, key, period)
            DO UPDATE SET count = {table}.count + EXCLUDED.count
            WHERE {table}.count + EXCLUDED.count <= %s
            RETURNING count
            """,  # noqa: S608  (table name from the model, values bound)
            [activity_id, scope, key, period, amount, limit],
        )
        return cursor.fetchone() is not None

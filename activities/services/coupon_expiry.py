"""Expiring coupons whose validity ended, in short batches.

Each batch is one statement in its own transaction: pick due grants through the partial expiry
index with `FOR UPDATE SKIP LOCKED` (a coupon being redeemed right now is left for the next
batch, never waited on), flip them to expired and write their django-fsm-log rows in the same
statement. No lock outlives a batch, so a million expiries in a night never hold the grants
table; a redemption that sees a coupon past its end expires it itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone
from django_fsm_log.models import StateLog
from psycopg import sql

from activities.models import Grant, GrantState

EXPIRY_BATCH = 5000
EXPIRE_TRANSITION = "expire"


def _statement() -> str:
    def column(model: type[Model], name: str) -> sql.Identifier:
        field = model._meta.get_field(name)
        if not isinstance(field, Field):
            raise TypeError(f"{model.__name__}.{name} is no column")
        return sql.Identifier(field.column)

    return (
        sql.SQL(
            "WITH due AS ("
            " SELECT {id} FROM {grants} WHERE {state} = %(issued)s AND {until} <= %(now)s"
            " ORDER BY {until} LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
            "), expired AS ("
            " UPDATE {grants} AS g SET {state} = %(expired)s, {remaining} = 0,"
            " {updated} = %(now)s FROM due WHERE g.{id} = due.{id} RETURNING g.{id}"
            ") INSERT INTO {log} ({timestamp}, {source}, {target}, {transition},"
            " {content_type}, {object_id}, {description})"
            " SELECT %(now)s, %(issued)s, %(expired)s, %(transition)s, %(content_type)s,"
            " expired.{id}, %(description)s FROM expired"
        )
        .format(
            grants=sql.Identifier(Grant._meta.db_table),
            id=sql.Identifier(Grant._meta.pk.column),
            state=column(Grant, "state"),
            until=column(Grant, "valid_until"),
            remaining=column(Grant, "remaining"),
            updated=column(Grant, "updated_at"),
            log=sql.Identifier(StateLog._meta.db_table),
            timestamp=column(StateLog, "timestamp"),
            source=column(StateLog, "source_state"),
            target=column(StateLog, "state"),
            transition=column(StateLog, "transition"),
            content_type=column(StateLog, "content_type"),
            object_id=column(StateLog, "object_id"),
            description=column(StateLog, "description"),
        )
        .as_string(None)
    )


def expire_batch(*, now: dt.datetime, limit: int = EXPIRY_BATCH) -> int:
    """Expire up to `limit` due coupons in one short transaction; returns how many."""
    params: dict[str, Any] = {
        "issued": GrantState.ISSUED,
        "expired": GrantState.EXPIRED,
        "now": now,
        "limit": limit,
        "transition": EXPIRE_TRANSITION,
        "content_type": ContentType.objects.get_for_model(Grant).pk,
        "description": "validity ended",
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_statement(), params)
        return cursor.rowcount


def expire_due_coupons(
    *, now: dt.datetime | None = None, batch: int = EXPIRY_BATCH, max_batches: int = 1000
) -> int:
    """Expire every coupon whose validity ended by `now`, batch after batch; returns the count.
    `max_batches` bounds one call (the beat task comes back for the rest)."""
    now = now or timezone.now()
    total = 0
    for _ in range(max_batches):
        done = expire_batch(now=now, limit=batch)
        total += done
        if done < batch:
            break
    return total

"""Task progress: how many times a customer did a task, counted up to its target by one
conditional upsert on the activity's counters (scope "c:<customer id>", period "all")."""

from __future__ import annotations

import functools

from django.db import connection
from psycopg import sql

from activities.models import ParticipationCounter

PERIOD = "all"


def counter_key(task: str) -> str:
    return f"task:{task}"


def scope(customer_id: int) -> str:
    return f"c:{customer_id}"


@functools.cache
def _advance_statement() -> str:
    meta = ParticipationCounter._meta
    names = {field.name: sql.Identifier(field.column) for field in meta.concrete_fields}
    return (
        sql.SQL(
            "INSERT INTO {t} ({activity}, {scope}, {key}, {period}, {count}) "
            "VALUES (%s, %s, %s, %s, 1) "
            "ON CONFLICT ({activity}, {scope}, {key}, {period}) "
            "DO UPDATE SET {count} = {t}.{count} + 1 WHERE {t}.{count} < %s "
            "RETURNING {count}"
        )
        .format(t=sql.Identifier(meta.db_table), **names)
        .as_string(None)
    )


def advance(*, activity_id: int, customer_id: int, task: str, target: int) -> int | None:
    """Count one more toward `target`: the new count, or None once the target was reached."""
    with connection.cursor() as cursor:
        cursor.execute(
            _advance_statement(),
            [activity_id, scope(customer_id), counter_key(task), PERIOD, target],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def counts(*, activity_id: int, customer_id: int, tasks: list[str]) -> dict[str, int]:
    """How far the customer got in each task (0 for a task never done)."""
    found = dict(
        ParticipationCounter.objects.filter(
            activity_id=activity_id,
            scope=scope(customer_id),
            period=PERIOD,
            key__in=[counter_key(task) for task in tasks],
        ).values_list("key", "count")
    )
    return {task: found.get(counter_key(task), 0) for task in tasks}

"""Counting for a subject other than the acting customer (a candidate, a customer named in the
payload, a team, a help request): one conditional upsert, never read-modify-write.

A count may be "once per customer per period": the `SubjectMark` insert decides that by its
unique constraint before the counter moves, and the caller's transaction (the run) rolls the
mark back when the count is then refused.
"""

from __future__ import annotations

import functools

from django.db import connection
from psycopg import sql

from activities.engine.errors import Rejected
from activities.models import SubjectCounter, SubjectMark
from core.db.rows import insert_unless_taken

ALL_TIME = "all"


def _names() -> dict[str, sql.Composable]:
    meta = SubjectCounter._meta
    names: dict[str, sql.Composable] = {"t": sql.Identifier(meta.db_table)}
    names.update({field.name: sql.Identifier(field.column) for field in meta.concrete_fields})
    return names


@functools.cache
def _increment_statement() -> str:
    template = (
        "INSERT INTO {t} ({activity}, {kind}, {subject}, {key}, {count}, {updated_at}) "
        "VALUES (%s, %s, %s, %s, %s, now()) "
        "ON CONFLICT ({activity}, {kind}, {subject}, {key}) DO UPDATE "
        "SET {count} = {t}.{count} + EXCLUDED.{count}, {updated_at} = now() "
        "WHERE %s::bigint IS NULL OR {t}.{count} + EXCLUDED.{count} <= %s::bigint "
        "RETURNING {count}"
    )
    return sql.SQL(template).format(**_names()).as_string(None)


def increment(
    *, activity_id: int, kind: str, subject: str, key: str, amount: int = 1, limit: int | None
) -> int | None:
    """Add `amount` to the subject's counter unless that would pass `limit`; the new count, or
    None when refused (nothing changed)."""
    if limit is not None and amount > limit:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            _increment_statement(), [activity_id, kind, subject, key, amount, limit, limit]
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def count_for_subject(
    *,
    activity_id: int,
    kind: str,
    subject: str,
    key: str,
    actor_id: int,
    period: str | None,
    limit: int | None,
    amount: int = 1,
) -> int:
    """The actor counts `amount` for the subject; the subject's new count.

    With a `period` ("2026-12-04", or "all") the actor counts for this subject at most once in
    it; a second time is Rejected `already_counted`. Past `limit` it is Rejected
    `subject_limit_reached`. Call inside the run's transaction, which a rejection rolls back.
    """
    if period is not None:
        mark = insert_unless_taken(
            SubjectMark,
            activity_id=activity_id,
            kind=kind,
            subject=subject,
            key=key,
            actor_id=actor_id,
            period=period,
        )
        if mark is None:
            raise Rejected("already_counted")
    count = increment(
        activity_id=activity_id, kind=kind, subject=subject, key=key, amount=amount, limit=limit
    )
    if count is None:
        raise Rejected("subject_limit_reached")
    return count

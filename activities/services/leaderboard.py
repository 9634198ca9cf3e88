"""Leaderboard scores: one row per (activity, customer), moved in SQL under the row's lock, and
the score buckets (how many customers hold each score) moved in the same transaction, so a
rank read is exact the moment the run commits.

The buckets are a count tree over the scores (`ScoreBucket`): a score's move changes the
counts of the blocks it leaves and enters, at the levels where they differ.

A score ranks by its value, then by who reached it first (`reached_at` moves only when the
score changes), then by customer id. Reads are in `activities.selectors_subjects`.
"""

from __future__ import annotations

import datetime as dt
import functools

from django.db import connection, models
from psycopg import sql

from activities.engine.errors import Rejected
from activities.models import Score, ScoreBucket
from activities.models.leaderboard import FANOUT_BITS, LEVELS, MAX_SCORE
from core.db.rows import insert_or_lock


class Aggregate(models.TextChoices):
    SUM = "sum", "sum of the field"
    MAX = "max", "highest value of the field"
    COUNT = "count", "number of events"


def _names(model: type[models.Model]) -> dict[str, sql.Composable]:
    meta = model._meta
    names: dict[str, sql.Composable] = {"t": sql.Identifier(meta.db_table)}
    names.update({field.name: sql.Identifier(field.column) for field in meta.concrete_fields})
    return names


# The new score from the old row ({score}, {events}) and the event's value (%(value)s).
_NEW_SCORE = {
    Aggregate.SUM: "{score} + %(value)s",
    Aggregate.MAX: "CASE WHEN {events} = 0 THEN %(value)s ELSE GREATEST({score}, %(value)s) END",
    Aggregate.COUNT: "{score} + 1",
}


@functools.cache
def _score_statement(aggregate: Aggregate) -> str:
    names = _names(Score)
    new = sql.SQL(_NEW_SCORE[aggregate]).format(**names)
    return (
        sql.SQL(
            "UPDATE {t} SET {score} = {new}, {events} = {events} + 1, "
            "{reached_at} = CASE WHEN {events} = 0 OR {new} <> {score} "
            "THEN %(now)s ELSE {reached_at} END "
            "WHERE {id} = %(id)s RETURNING {score}"
        )
        .format(new=new, **names)
        .as_string(None)
    )


@functools.cache
def _bucket_statement(rows: int) -> str:
    return (
        sql.SQL(
            "INSERT INTO {t} ({activity}, {level}, {block}, {holders}) VALUES {values} "
            "ON CONFLICT ({activity}, {level}, {block}) "
            "DO UPDATE SET {holders} = {t}.{holders} + EXCLUDED.{holders}"
        )
        .format(
            values=sql.SQL(", ").join([sql.SQL("(%s, %s, %s, %s)")] * rows),
            **_names(ScoreBucket),
        )
        .as_string(None)
    )


def blocks(score: int) -> list[int]:
    """The score's block at each level of the count tree, exact score first."""
    return [score >> (FANOUT_BITS * level) for level in range(LEVELS)]


def add_score(
    *, activity_id: int, customer_id: int, aggregate: Aggregate, value: int, now: dt.datetime
) -> tuple[int | None, int]:
    """Score one event for the customer; (score before, or None when new to the board; score
    after). Rejected `score_out_of_range` past +-MAX_SCORE."""
    row = insert_or_lock(
        Score,
        unique=("activity_id", "customer_id"),
        activity_id=activity_id,
        customer_id=customer_id,
        score=0,
        reached_at=now,
        events=0,
    )
    before = row.score if row.events else None
    with connection.cursor() as cursor:
        cursor.execute(_score_statement(aggregate), {"value": value, "now": now, "id": row.pk})
        after = cursor.fetchone()[0]
    if abs(after) > MAX_SCORE:
        # The run's rollback undoes the UPDATE.
        raise Rejected("score_out_of_range")
    if before != after:
        _move_bucket(activity_id=activity_id, before=before, after=after)
    return before, after


def _move_bucket(*, activity_id: int, before: int | None, after: int) -> None:
    # Only the levels where the block changes move; all in one statement, ordered by level and
    # block, so two runs moving between the same blocks lock them in the same order and cannot
    # deadlock.
    moves = {(level, block): 1 for level, block in enumerate(blocks(after))}
    if before is not None:
        for level, block in enumerate(blocks(before)):
            moves[(level, block)] = moves.get((level, block), 0) - 1
    rows = sorted((key, delta) for key, delta in moves.items() if delta)
    params = [p for (level, block), delta in rows for p in (activity_id, level, block, delta)]
    with connection.cursor() as cursor:
        cursor.execute(_bucket_statement(len(rows)), params)

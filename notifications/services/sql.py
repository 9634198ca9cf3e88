"""Composing and running the notification statements.

Tables and columns are named from the models' `_meta` and states from their enums, composed with
`psycopg.sql`: a template says `{d_status} = {status_queued}`, never a name or a state typed by
hand, so renaming a column or a state changes every statement with the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import connection, models, transaction
from psycopg import sql

from notifications.models import Broadcast, BroadcastState, Delivery, DeliveryStatus
from segments.models import Customer


def model_names(model: type[models.Model], *, table: str, prefix: str) -> dict[str, sql.Composable]:
    """`{<table>}` for the model's table and `{<prefix><attname>}` for each of its columns."""
    meta = model._meta
    names: dict[str, sql.Composable] = {table: sql.Identifier(meta.db_table)}
    names.update(
        {prefix + field.attname: sql.Identifier(field.column) for field in meta.concrete_fields}
    )
    return names


def choice_literals(choices: type[models.TextChoices], *, prefix: str) -> dict[str, sql.Composable]:
    """`{<prefix><member name>}` for each member, e.g. `{status_queued}`, as an SQL literal.

    States are literals, not parameters: PostgreSQL uses a partial index (`status IN ('queued',
    'sending')`) only when it sees the state in the statement it plans, prepared or not."""
    return {prefix + member.name.lower(): sql.Literal(member.value) for member in choices}


NAMES: dict[str, sql.Composable] = {
    **model_names(Delivery, table="deliveries", prefix="d_"),
    **model_names(Broadcast, table="broadcasts", prefix="b_"),
    **model_names(Customer, table="customers", prefix="c_"),
    **choice_literals(DeliveryStatus, prefix="status_"),
    **choice_literals(BroadcastState, prefix="state_"),
}


def compose_statement(template: str, **names: sql.Composable) -> sql.Composed:
    """`template` with NAMES (and `names`) filled in; `%s` stay parameters, `{{` is a brace."""
    return sql.SQL(template).format(**NAMES, **names)


def column(model: type[models.Model], name: str) -> sql.Identifier:
    """The column of a field named at run time (a backend's address field, an INSERT's list)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise FieldDoesNotExist(f"{model.__name__}.{name} is not a column.")
    return sql.Identifier(field.column)


def render(statement: sql.Composable) -> str:
    """The statement's text: identifiers quoted, literals escaped, parameters left as `%s`."""
    return statement.as_string(None)


@contextmanager
def cursor() -> Iterator[Any]:
    """A cursor in a transaction with JIT compilation, bitmap and sequential scans off.

    These statements touch a page of customers or a few hundred deliveries by key. Their
    estimates (a correlated probe per row, an unnested array) look expensive enough to
    PostgreSQL to JIT-compile them, which then costs more than running them: on a 5,000-row
    planning page, 490 ms of JIT for 85 ms of work. And while a big broadcast churns its
    deliveries faster than autovacuum re-analyses them, the statistics are stale enough for the
    planner to combine whole partial indexes in a bitmap (1.5 million entries read to update
    100 rows); without bitmaps it keeps to exact index lookups. The same staleness the other
    way round (deliveries analysed while empty, then a million planned before autovacuum looks
    again) makes a sequential scan per probe look free: planning turned quadratic. Every
    statement here is designed as index lookups, so sequential scans are ruled out.
    """
    with transaction.atomic(), connection.cursor() as opened:
        opened.execute(
            "SET LOCAL jit = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off"
        )
        yield opened

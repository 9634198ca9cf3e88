"""Single-statement inserts that also answer "was it already there?".

`insert_or_lock`: `INSERT ... ON CONFLICT (unique) DO UPDATE SET <unique column> =
EXCLUDED.<same> RETURNING *` returns the row whether it was just inserted or already there, and
either way holds its row lock until the transaction ends; a concurrent caller with the same
unique values waits, then gets the row as the first one committed it. The usual
`INSERT ... ON CONFLICT DO NOTHING` followed by `SELECT ... FOR UPDATE` does the same in two
round trips, and a run pays this on every event.

`insert_unless_taken`: `INSERT ... ON CONFLICT DO NOTHING RETURNING id`, without the savepoint
that `create()` inside `try/except IntegrityError` needs.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model
from django.db.models.signals import post_save

M = TypeVar("M", bound=Model)


def _insert(model: type[M], values: dict[str, Any]) -> tuple[M, str, list[Any]]:
    instance = model(**values)
    # An auto-increment key is left to the database; a UUID key comes with its default.
    fields = [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and getattr(instance, f.attname) is None)
    ]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
    )
    params = [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields]
    return instance, sql, params


def _column(model: type[Model], attname: str) -> str:
    field: Field = next(f for f in model._meta.concrete_fields if f.attname == attname)
    return connection.ops.quote_name(field.column)


def _converted(model: type[Model], row: tuple[Any, ...]) -> list[Any]:
    """Python values from a raw row, through the converters a queryset would apply (a JSON
    column arrives as text, for one)."""
    values = []
    for field, value in zip(model._meta.concrete_fields, row, strict=True):
        column = field.get_col(model._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(
            connection
        ):
            value = convert(value, column, connection)
        values.append(value)
    return values


def insert_or_lock(model: type[M], *, unique: tuple[str, ...], **values: Any) -> M:
    """The row of `model` with these `unique` field values, created from `values` when absent,
    locked FOR UPDATE. `values` must name the unique fields (by attname, as `event_id`)."""
    _, sql, params = _insert(model, values)
    conflict = [_column(model, name) for name in unique]
    everything = model._meta.concrete_fields
    sql += (
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {conflict[0]} = EXCLUDED.{conflict[0]} "
        f"RETURNING {', '.join(connection.ops.quote_name(f.column) for f in everything)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return model.from_db(connection.alias, [f.attname for f in everything], _converted(model, row))


def insert_unless_taken(model: type[M], **values: Any) -> M | None:
    """Insert a row of `model` and return it; None, and nothing written, when a unique
    constraint already holds a row with these values. Like `create()`, a new row sends
    `post_save` (the metrics count events by it)."""
    instance, sql, params = _insert(model, values)
    pk = connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(sql + f"ON CONFLICT DO NOTHING RETURNING {pk}", params)
        row = cursor.fetchone()
    if row is None:
        return None
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    post_save.send(
        sender=model,
        instance=instance,
        created=True,
        update_fields=None,
        raw=False,
        using=connection.alias,
    )
    return instance

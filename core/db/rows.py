"""Single-statement writes for the engine's hot path, their SQL built once per model.

`insert_or_lock`: `INSERT ... ON CONFLICT (unique) DO UPDATE SET <unique column> =
EXCLUDED.<same> RETURNING *` returns the row whether it was just inserted or already there, and
either way holds its row lock until the transaction ends; a concurrent caller with the same
unique values waits, then gets the row as the first one committed it. The usual
`INSERT ... ON CONFLICT DO NOTHING` followed by `SELECT ... FOR UPDATE` does the same in two
round trips, and a run pays this on every event.

`insert_unless_taken`: `INSERT ... ON CONFLICT DO NOTHING RETURNING id`, without the savepoint
that `create()` inside `try/except IntegrityError` needs.

`save_columns` is `save(update_fields=...)` without the ORM's per-call query building, which
costs several times the statement itself.

The writers send no model signals and run no `save()`: a model whose writes need either is
refused (`UnwritableModel`) the first time it is used, as is one whose database computes or
defaults a column (`db_default`, `GeneratedField`). The check runs once per model and process,
so a receiver connected after that first use goes unnoticed: connect receivers in
AppConfig.ready(). Callers count what they write themselves (`core.metrics`).
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.db import connection
from django.db.models import NOT_PROVIDED, Field, Model
from django.db.models.signals import post_save, pre_save
from django_fsm import ConcurrentTransitionMixin

M = TypeVar("M", bound=Model)


class UnwritableModel(TypeError):
    """The model's writes do more than the row writers' single statement would."""


def _refusal(model: type[Model]) -> str | None:
    name = model.__name__
    if issubclass(model, ConcurrentTransitionMixin):
        return (
            f"{name} is a django-fsm ConcurrentTransitionMixin model: its save() checks the "
            "state it was loaded in and remembers the new one."
        )
    for klass in model.__mro__[: model.__mro__.index(Model)]:
        if "save" in vars(klass):
            return f"{name} has a save() of its own ({klass.__qualname__}.save)."
    defaulted = [f.name for f in model._meta.concrete_fields if f.db_default is not NOT_PROVIDED]
    if defaulted:
        return f"{name} has fields the database defaults (db_default): {defaulted}."
    generated = [f.name for f in model._meta.concrete_fields if f.generated]
    if generated:
        return f"{name} has fields the database computes (GeneratedField): {generated}."
    if pre_save.has_listeners(model) or post_save.has_listeners(model):
        return f"{name} has pre_save/post_save receivers."
    return None


@functools.cache
def _writable(model: type[Model]) -> None:
    refusal = _refusal(model)
    if refusal is not None:
        raise UnwritableModel(
            f"{refusal} The row writers would skip that; write {model.__name__} with the ORM."
        )


@functools.cache
def _insert_sql(model: type[Model], with_pk: bool) -> tuple[str, tuple[Field, ...]]:
    # An auto-increment key is left to the database; a UUID key comes with its default.
    fields = tuple(f for f in model._meta.concrete_fields if with_pk or not f.primary_key)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
    )
    return sql, fields


def _insert(model: type[M], values: dict[str, Any]) -> tuple[M, str, list[Any]]:
    _writable(model)
    instance = model(**values)
    sql, fields = _insert_sql(model, instance.pk is not None)
    params = [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields]
    return instance, sql, params


@functools.cache
def _column(model: type[Model], attname: str) -> str:
    field: Field = next(f for f in model._meta.concrete_fields if f.attname == attname)
    return connection.ops.quote_name(field.column)


@functools.cache
def _converters(model: type[Model]) -> tuple[tuple[Any, list[Any]], ...]:
    """Per concrete field, the converters a queryset would apply to its column (a JSON column
    arrives as text, for one)."""
    columns = [f.get_col(model._meta.db_table) for f in model._meta.concrete_fields]
    return tuple(
        (column, connection.ops.get_db_converters(column) + column.get_db_converters(connection))
        for column in columns
    )


def _converted(model: type[Model], row: tuple[Any, ...]) -> list[Any]:
    values = []
    for (column, converters), value in zip(_converters(model), row, strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        values.append(value)
    return values


def _inserted(instance: M, pk: Any) -> M:
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


@functools.cache
def _lock_suffix(model: type[Model], unique: tuple[str, ...]) -> tuple[str, list[str]]:
    """The conflict clause and every column returned, with the attnames they load into."""
    conflict = [_column(model, name) for name in unique]
    everything = model._meta.concrete_fields
    suffix = (
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {conflict[0]} = EXCLUDED.{conflict[0]} "
        f"RETURNING {', '.join(connection.ops.quote_name(f.column) for f in everything)}"
    )
    return suffix, [f.attname for f in everything]


def insert_or_lock(model: type[M], *, unique: tuple[str, ...], **values: Any) -> M:
    """The row of `model` with these `unique` field values, created from `values` when absent,
    locked FOR UPDATE. `values` must name the unique fields (by attname, as `event_id`)."""
    _, sql, params = _insert(model, values)
    suffix, attnames = _lock_suffix(model, unique)
    with connection.cursor() as cursor:
        cursor.execute(sql + suffix, params)
        row = cursor.fetchone()
    return model.from_db(connection.alias, attnames, _converted(model, row))


def insert_unless_taken(model: type[M], **values: Any) -> M | None:
    """Insert a row of `model` and return it; None, and nothing written, when a unique
    constraint already holds a row with these values."""
    instance, sql, params = _insert(model, values)
    pk = connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(sql + f"ON CONFLICT DO NOTHING RETURNING {pk}", params)
        row = cursor.fetchone()
    return None if row is None else _inserted(instance, row[0])


@functools.cache
def _update_sql(model: type[Model], attnames: tuple[str, ...]) -> tuple[str, tuple[Field, ...]]:
    fields = tuple(
        next(f for f in model._meta.concrete_fields if name in (f.name, f.attname))
        for name in attnames
    )
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(model._meta.db_table)} "  # noqa: S608
        f"SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "
        f"WHERE {quote(model._meta.pk.column)} = %s"
    )
    return sql, fields


def save_columns(instance: Model, *names: str, returning: str | None = None) -> Any:
    """`instance.save(update_fields=names)` for a saved instance (auto_now fields still get
    their new time). With `returning` (a field's attname), the row's value of that column as the
    update left it (a concurrent writer may have changed it since `instance` was read), as the
    driver returns it, with no field conversion; None when the row is gone."""
    model = type(instance)
    _writable(model)
    sql, fields = _update_sql(model, names)
    params = [f.get_db_prep_save(f.pre_save(instance, add=False), connection) for f in fields]
    if returning is not None:
        sql = f"{sql} RETURNING {_column(model, returning)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, instance._meta.pk.get_db_prep_value(instance.pk, connection)])
        if returning is None:
            return None
        row = cursor.fetchone()
    return None if row is None else row[0]

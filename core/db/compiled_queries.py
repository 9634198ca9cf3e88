"""Querysets compiled to SQL once per process, then run with fresh values.

The engine runs the same few queries for every event, differing only in ids. Building a
queryset and compiling it costs the worker 0.3-1.5 ms of Python each time: several times what
PostgreSQL spends running the statement, and most of what an event costs the machine
(docs/benchmarks.md, "Activity engine"). A `CompiledQuery` asks the ORM for the SQL once, with
a marker value in each slot that varies, and afterwards runs that SQL with the real values,
converting columns and building model instances (with their `select_related` objects and
annotations) the way iterating the queryset would. The ORM stays the one place the query's
shape is written.

What it cannot reproduce it refuses when it compiles (`UncompilableQuery`): `prefetch_related`,
results other than model instances or `values_list()` tuples, the owner a related manager
attaches to its instances, and any SQL parameter besides the slots that changes from one
build of the queryset to the next. The query is built and compiled twice, with different
markers, to find those: a `timezone.now()` read while building would otherwise stay frozen at
the first compile. Such a value becomes a slot of its own (`now=datetime`).

With the setting GAMBIT_COMPILED_QUERY_SHADOW (the test settings turn it on) every call also
runs the plain queryset and raises `CompiledQueryDiverged` unless both give the same rows or
instances, so the whole test suite checks each compiled query against the ORM.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import (  # type: ignore[attr-defined]
    ModelIterable,
    ValuesListIterable,
    get_related_populators,
)
from psycopg.types.json import Json, Jsonb

_MARKER_BASE = -(2**62)
# Markers of the second build differ from the first one's by this much.
_SECOND_BUILD = 2**20
_EARLIEST = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
# How often the shadow reads both sides before calling a difference a divergence.
_SHADOW_READS = 3
M = TypeVar("M", bound=Model)


class UncompilableQuery(ValueError):
    """The queryset gives something a compiled query would not reproduce."""


class CompiledQueryDiverged(AssertionError):
    """Shadow mode: the compiled query and its plain queryset gave different results."""


def _marker(kind: type, number: int) -> Any:
    if kind is int:
        return _MARKER_BASE + number
    if kind is uuid.UUID:
        return uuid.UUID(int=2**127 + number)
    if kind is str:
        return f"\x00compiled-query-slot-{number}\x00"
    if kind is dt.datetime:
        return _EARLIEST + dt.timedelta(microseconds=number)
    raise TypeError(
        f"A compiled query slot must be int, str, uuid.UUID or datetime.datetime, not {kind!r}."
    )


def _unchanged(value: Any) -> Any:
    return value


def _uuid_hex(value: Any) -> str:
    return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).hex


def _marker_forms(markers: dict[str, Any]) -> dict[Any, tuple[str, Callable[[Any], Any]]]:
    """Each marker as it may appear among the compiled parameters, with how to turn a real
    value into that form: PostgreSQL binds a UUID as it is, SQLite as its hex string."""
    forms: dict[Any, tuple[str, Callable[[Any], Any]]] = {}
    for name, marker in markers.items():
        forms[marker] = (name, _unchanged)
        if isinstance(marker, uuid.UUID):
            forms[marker.hex] = (name, _uuid_hex)
    return forms


def _comparable(param: Any) -> Any:
    # psycopg's JSON wrappers compare by identity; what they wrap is what gets sent.
    if isinstance(param, (Json, Jsonb)):
        return type(param), param.obj
    return param


def _refuse_unreproducible(queryset: QuerySet[Any, Any]) -> None:
    if queryset._prefetch_related_lookups:  # type: ignore[attr-defined]
        raise UncompilableQuery(
            "prefetch_related() runs further queries after the main one; a compiled query runs "
            "one statement. Compile the related rows' query on its own."
        )
    if queryset._iterable_class not in (ModelIterable, ValuesListIterable):
        raise UncompilableQuery(
            "A compiled query gives model instances (instances()) or values_list() rows as "
            "lists (rows()), not the results of values(), values_list(flat=True) or "
            f"values_list(named=True) ({queryset._iterable_class.__name__}). "
            "Compile a values_list() and shape its rows."
        )
    if queryset._known_related_objects:  # type: ignore[attr-defined]
        raise UncompilableQuery(
            "A related manager's queryset (customer.grants.all()) sets its owner on every "
            "instance, which a compiled query does not; build the queryset from the model's "
            "manager with a filter on the owner instead."
        )


@dataclass(frozen=True)
class _Assembly:
    """How a row becomes a model instance, as `ModelIterable` works it out per queryset."""

    model: type[Model]
    start: int
    end: int
    attnames: tuple[str, ...]
    populators: tuple[Any, ...]  # select_related objects; stateless once built
    annotations: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, compiler: Any, using: str) -> _Assembly:
        klass_info = compiler.klass_info
        select = compiler.select
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        return cls(
            model=klass_info["model"],
            start=start,
            end=end,
            attnames=tuple(column[0].target.attname for column in select[start:end]),
            populators=tuple(get_related_populators(klass_info, select, using)),
            annotations=tuple(compiler.annotation_col_map.items()),
        )

    def build(self, row: list[Any], using: str) -> Model:
        instance = self.model.from_db(using, self.attnames, row[self.start : self.end])
        for populator in self.populators:
            populator.populate(row, instance)
        for name, position in self.annotations:
            setattr(instance, name, row[position])
        return instance


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    # (position in params, slot name, the value as the backend binds it)
    slots: tuple[tuple[int, str, Callable[[Any], Any]], ...]
    # Columns past this one only serve DISTINCT with ORDER BY; the queryset drops them.
    width: int | None
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]
    assembly: _Assembly | None

    def bind(self, values: dict[str, Any]) -> list[Any]:
        params = list(self.params)
        for position, name, prepare in self.slots:
            params[position] = prepare(values[name])
        return params


def _snapshot(instance: Model) -> tuple[Any, ...]:
    """What a caller reads from an instance without another query: its class, its loaded
    fields and annotations, and the related objects that came with it."""
    return (
        type(instance),
        instance._state.adding,
        instance._state.db,
        {name: value for name, value in vars(instance).items() if not name.startswith("_")},
        {
            name: None if related is None else _snapshot(related)
            for name, related in instance._state.fields_cache.items()
        },
    )


def _as_lists(rows: list[Any]) -> list[list[Any]]:
    return [list(row) for row in rows]


def _snapshots(instances: list[Any]) -> list[tuple[Any, ...]]:
    return [_snapshot(instance) for instance in instances]


@contextlib.contextmanager
def _unlogged(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Keeps the shadow's statements out of `connection.queries`, so a test that counts what
    a path runs counts what it runs in production."""
    logged, connection.force_debug_cursor = connection.force_debug_cursor, False
    try:
        yield
    finally:
        connection.force_debug_cursor = logged


class CompiledQuery(Generic[M]):
    """`CompiledQuery(lambda event_id: Event.objects.filter(pk=event_id), event_id=uuid.UUID)`
    names each varying value and its type; `.instances(event_id=...)` returns model instances.
    Of a `values_list()` queryset, `.rows(...)` returns its tuples as lists."""

    def __init__(
        self, build: Callable[..., QuerySet[M, Any]], /, using: str = "default", **slots: type
    ):
        self._build = build
        self._slots = slots
        self._using = using
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def _compile_once(self, first_marker: int) -> _Compiled:
        markers = {
            name: _marker(kind, first_marker + n)
            for n, (name, kind) in enumerate(self._slots.items())
        }
        queryset = self._build(**markers)
        _refuse_unreproducible(queryset)
        compiler = queryset.query.get_compiler(using=self._using)
        sql, params = compiler.as_sql()
        forms = _marker_forms(markers)
        slots = tuple(
            (position, *forms[value])
            for position, value in enumerate(params)
            if isinstance(value, (int, str, uuid.UUID, dt.datetime)) and value in forms
        )
        width = compiler.col_count
        expressions = [column[0] for column in compiler.select[:width]]
        converters = tuple(
            (position, tuple(convs), expression)
            for position, (convs, expression) in compiler.get_converters(expressions).items()
        )
        gives_instances = queryset._iterable_class is ModelIterable
        return _Compiled(
            sql,
            tuple(params),
            slots,
            width if compiler.has_extra_select else None,
            converters,
            _Assembly.of(compiler, self._using) if gives_instances else None,
        )

    def _compile(self) -> _Compiled:
        with self._lock:
            if self._compiled is not None:
                return self._compiled
            compiled = self._compile_once(0)
            self._refuse_drift(compiled, self._compile_once(_SECOND_BUILD))
            missing = set(self._slots) - {name for _, name, _ in compiled.slots}
            if missing:
                raise UncompilableQuery(
                    f"The compiled query never uses the slots {sorted(missing)}."
                )
            self._compiled = compiled
            return compiled

    @staticmethod
    def _refuse_drift(first: _Compiled, second: _Compiled) -> None:
        """Two builds with different markers must differ in the slots alone."""
        if first.sql != second.sql:
            raise UncompilableQuery(
                "The queryset's SQL changes from one build to the next:\n"
                f"{first.sql}\n{second.sql}\nBuild the same shape for every slot value."
            )
        slots = {position: name for position, name, _ in first.slots}
        if slots != {position: name for position, name, _ in second.slots}:
            raise UncompilableQuery("The slots move from one build of the queryset to the next.")
        for position, (before, after) in enumerate(zip(first.params, second.params, strict=True)):
            if position not in slots and _comparable(before) != _comparable(after):
                raise UncompilableQuery(
                    f"SQL parameter {position} is {before!r} in one build of the queryset and "
                    f"{after!r} in the next: the queryset computes it while it is built (the "
                    "time, a setting) or from a slot in a form the slots do not carry (inside "
                    "a larger value, as __startswith does). Pass that value as a slot of its own."
                )

    def _results(self, compiled: _Compiled, values: dict[str, Any]) -> list[Any]:
        connection = connections[self._using]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, compiled.bind(values))
            fetched = cursor.fetchall()
        rows = [
            list(row) if compiled.width is None else list(row[: compiled.width]) for row in fetched
        ]
        for row in rows:
            for position, convs, expression in compiled.converters:
                value = row[position]
                for convert in convs:
                    value = convert(value, expression, connection)
                row[position] = value
        if compiled.assembly is None:
            return rows
        return [compiled.assembly.build(row, self._using) for row in rows]

    def _shadow(
        self,
        compiled: _Compiled,
        values: dict[str, Any],
        found: list[Any],
        comparable: Callable[[list[Any]], list[Any]],
    ) -> None:
        with _unlogged(connections[self._using]):
            ours = comparable(found)
            theirs = comparable(list(self._build(**values).using(self._using)))
            reads = 1
            # A commit between the two reads (a concurrent request or worker) can part them;
            # a compiled query that diverges from its queryset does so on every read.
            while ours != theirs and reads < _SHADOW_READS:
                ours = comparable(self._results(compiled, values))
                theirs = comparable(list(self._build(**values).using(self._using)))
                reads += 1
        if ours != theirs:
            raise CompiledQueryDiverged(
                f"The compiled query gave {ours!r}; its queryset gives {theirs!r} "
                f"(slots {values!r}).\nSQL: {compiled.sql}"
            )

    def rows(self, **values: Any) -> list[list[Any]]:
        compiled = self._compiled or self._compile()
        if compiled.assembly is not None:
            raise TypeError("rows() reads a values_list() queryset; this one gives instances().")
        rows = self._results(compiled, values)
        if getattr(settings, "GAMBIT_COMPILED_QUERY_SHADOW", False):
            self._shadow(compiled, values, rows, _as_lists)
        return rows

    def instances(self, **values: Any) -> list[M]:
        compiled = self._compiled or self._compile()
        if compiled.assembly is None:
            raise TypeError("instances() needs a queryset of model instances, not values_list().")
        instances = self._results(compiled, values)
        if getattr(settings, "GAMBIT_COMPILED_QUERY_SHADOW", False):
            self._shadow(compiled, values, instances, _snapshots)
        return instances

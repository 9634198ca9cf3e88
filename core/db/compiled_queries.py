"""Querysets compiled to SQL once per process, then run with fresh values.

The engine runs the same few queries for every event, differing only in ids. Building a
queryset and compiling it costs the worker 0.3-1.5 ms of Python each time: several times what
PostgreSQL spends running the statement, and most of what an event costs the machine
(docs/benchmarks.md, "Activity engine"). A `CompiledQuery` asks the ORM for the SQL once, with
a marker value in each slot that varies, and afterwards runs that SQL with the real values,
converting columns and building model instances (with their `select_related` objects and
annotations) the way iterating the queryset would. The ORM stays the one place the query's
shape is written.

Only a queryset whose SQL depends on nothing but the named slots may be compiled: no
`timezone.now()`, no setting read at build time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]

_MARKER_BASE = -(2**62)
M = TypeVar("M", bound=Model)


def _marker(kind: type, number: int) -> Any:
    if kind is int:
        return _MARKER_BASE + number
    if kind is uuid.UUID:
        return uuid.UUID(int=2**127 + number)
    if kind is str:
        return f"\x00compiled-query-slot-{number}\x00"
    raise TypeError(f"A compiled query slot must be int, str or uuid.UUID, not {kind!r}.")


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
    def of(cls, compiler: Any, using: str) -> _Assembly | None:
        klass_info = compiler.klass_info
        if klass_info is None:  # a values()/values_list() query
            return None
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
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]
    assembly: _Assembly | None

    def bind(self, values: dict[str, Any]) -> list[Any]:
        params = list(self.params)
        for position, name, prepare in self.slots:
            params[position] = prepare(values[name])
        return params


class CompiledQuery(Generic[M]):
    """`CompiledQuery(lambda event_id: Event.objects.filter(pk=event_id), event_id=uuid.UUID)`
    names each varying value and its type; `.rows(event_id=...)` returns converted tuples in
    select order, `.instances(...)` model instances."""

    def __init__(
        self, build: Callable[..., QuerySet[M, Any]], /, using: str = "default", **slots: type
    ):
        self._build = build
        self._slots = slots
        self._using = using
        self._compiled: _Compiled | None = None
        self._lock = threading.Lock()

    def _compile(self) -> _Compiled:
        with self._lock:
            if self._compiled is not None:
                return self._compiled
            markers = {name: _marker(kind, n) for n, (name, kind) in enumerate(self._slots.items())}
            queryset = self._build(**markers)
            compiler = queryset.query.get_compiler(using=self._using)
            sql, params = compiler.as_sql()
            forms = _marker_forms(markers)
            slots = tuple(
                (position, *forms[value])
                for position, value in enumerate(params)
                if isinstance(value, (int, str, uuid.UUID)) and value in forms
            )
            missing = set(self._slots) - {name for _, name, _ in slots}
            if missing:
                raise ValueError(f"The compiled query never uses the slots {sorted(missing)}.")
            expressions = [column[0] for column in compiler.select]
            converters = tuple(
                (position, tuple(convs), expression)
                for position, (convs, expression) in compiler.get_converters(expressions).items()
            )
            assembly = _Assembly.of(compiler, self._using)
            self._compiled = _Compiled(sql, tuple(params), slots, converters, assembly)
            return self._compiled

    def rows(self, **values: Any) -> list[list[Any]]:
        compiled = self._compiled or self._compile()
        connection = connections[self._using]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, compiled.bind(values))
            rows = [list(row) for row in cursor.fetchall()]
        for row in rows:
            for position, convs, expression in compiled.converters:
                value = row[position]
                for convert in convs:
                    value = convert(value, expression, connection)
                row[position] = value
        return rows

    def instances(self, **values: Any) -> list[M]:
        rows = self.rows(**values)
        assembly = self._compiled.assembly if self._compiled else None
        if assembly is None:
            raise TypeError("instances() needs a queryset of model instances, not values().")
        return [assembly.build(row, self._using) for row in rows]  # type: ignore[misc]

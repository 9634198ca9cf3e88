"""Condition trees: one grammar, checked once, compiled to a Python predicate or a Django `Q`.

A tree is data, never code:

    {"all": [node, ...]} | {"any": [node, ...]} | {"not": node}
    | {"field": "event.score", "op": "gte", "value": 60}

Nothing is evaluated from text; an operator name only selects one of the functions below.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, Q, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact
from django.utils.translation import gettext as _

MAX_DEPTH = 12
MAX_NODES = 500
MAX_LIST_VALUES = 1000


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

OPERATORS = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "exists",
    "between",
)


@dataclass(frozen=True)
class RuleError(Exception):
    """A tree that cannot be compiled, with the JSON path of the bad node."""

    path: str
    message: str
    code: str = "invalid_rule"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class All:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any


Node = All | AnyOf | Not | Condition

# A field checker raises RuleError (with a message, path filled in here) for a field it refuses.
FieldChecker = Callable[[str], None]


def parse(tree: Any, *, check_field: FieldChecker | None = None, path: str = "") -> Node:
    """Validate a raw tree and return its typed form; raises RuleError naming the bad path."""
    counter = [0]
    return _parse(tree, check_field, path, 0, counter)


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def _parse(
    tree: Any, check_field: FieldChecker | None, path: str, depth: int, counter: list[int]
) -> Node:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise RuleError(
            path,
            _("A rule may have at most %(count)d conditions.") % {"count": MAX_NODES},
            "rule_too_large",
        )
    if depth > MAX_DEPTH:
        raise RuleError(
            path,
            _("A rule may nest at most %(count)d levels.") % {"count": MAX_DEPTH},
            "rule_too_deep",
        )
    if not isinstance(tree, Mapping):
        raise RuleError(path, _("Expected a condition or a group of conditions."))
    keys = set(tree)
    for group, cls in (("all", All), ("any", AnyOf)):
        if keys == {group}:
            items = tree[group]
            if not isinstance(items, list) or not items:
                raise RuleError(_join(path, group), _("A group needs at least one condition."))
            return cls(
                tuple(
                    _parse(item, check_field, f"{_join(path, group)}[{i}]", depth + 1, counter)
                    for i, item in enumerate(items)
                )
            )
    if keys == {"not"}:
        return Not(_parse(tree["not"], check_field, _join(path, "not"), depth + 1, counter))
    if "field" in keys and keys <= {"field", "op", "value"}:
        return _parse_condition(tree, check_field, path)
    raise RuleError(
        path,
        _("Unexpected keys %(keys)s; use all, any, not or field/op/value.")
        % {"keys": sorted(keys)},
    )


def _parse_condition(
    tree: Mapping[str, Any], check_field: FieldChecker | None, path: str
) -> Condition:
    field = tree["field"]
    if not isinstance(field, str) or not field:
        raise RuleError(_join(path, "field"), _("Choose a field."))
    op = tree.get("op", "eq")
    if op not in OPERATORS:
        raise RuleError(
            _join(path, "op"),
            _("Unknown operator %(op)r; use one of %(known)s.")
            % {"op": op, "known": ", ".join(OPERATORS)},
            "unknown_operator",
        )
    if check_field is not None:
        try:
            check_field(field)
        except RuleError as error:
            raise RuleError(_join(path, "field"), error.message, error.code) from None
    value = tree.get("value", MISSING)
    value_path = _join(path, "value")
    if op == "exists":
        if value is MISSING:
            value = True
        if not isinstance(value, bool):
            raise RuleError(value_path, _("“is present” takes yes or no."), "invalid_value")
    elif value is MISSING:
        raise RuleError(value_path, _("Give a value."), "invalid_value")
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or len(value) > MAX_LIST_VALUES:
            raise RuleError(
                value_path,
                _("Give a list of at most %(count)d values.") % {"count": MAX_LIST_VALUES},
                "invalid_value",
            )
        value = tuple(value)
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(
                value_path, _("“is between” takes two values, from and to."), "invalid_value"
            )
        value = tuple(value)
    elif isinstance(value, (dict, list)):
        raise RuleError(value_path, _("Give a single value."), "invalid_value")
    return Condition(field=field, op=op, value=value)


# --- Python back end -------------------------------------------------------------------------

Resolver = Callable[[str], Any]
Predicate = Callable[[Resolver], bool]


# Text that reads as a number: the same pattern the segments' SQL uses (ASCII digits only; no
# NaN, Infinity or 1_000, which Python's Decimal would take and PostgreSQL would not). Each digit
# can be matched in one way only (the fraction needs its dot), so a long run of digits that fails
# at its end fails in linear time; `[0-9]+\.?[0-9]*` backtracked quadratically (16,000 digits
# took 9 s). Longer text is never a number: a payload cannot make a rule parse a megabyte.
NUMERIC_PATTERN = r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?"
MAX_NUMERIC_TEXT_LENGTH = 100
NUMERIC_TEXT = re.compile(rf"[ \t\n\r\f\v]*{NUMERIC_PATTERN}[ \t\n\r\f\v]*")


def numeric_text(text: str) -> Decimal | None:
    """The number a text spells, or None; bounded in time whatever the text."""
    if len(text) > MAX_NUMERIC_TEXT_LENGTH or not NUMERIC_TEXT.fullmatch(text):
        return None
    return Decimal(text.strip())


def _coerce(actual: Any, expected: Any) -> Any:
    """Bring a stored value to the type of the rule's literal, so "60" >= 50 compares numbers."""
    if actual is None or actual is MISSING:
        return actual
    if isinstance(expected, bool):
        return actual if isinstance(actual, bool) else MISSING
    if isinstance(expected, (int, float, Decimal)):
        if isinstance(actual, bool):
            return MISSING  # true is not 1 (and SQL agrees)
        if isinstance(actual, (int, float, Decimal)):
            return actual
        if isinstance(actual, str):
            number = numeric_text(actual)
            return MISSING if number is None else number
        return MISSING
    if isinstance(expected, str) and isinstance(actual, (dt.date, dt.datetime)):
        return actual.isoformat()
    return actual


@functools.lru_cache(maxsize=1024)
def _aware(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _operands(actual: Any, expected: Any) -> tuple[Any, Any]:
    """The two sides of a comparison. An aware datetime against an ISO text with an offset
    compares instants ("10:00+08:00" is before "03:00Z"), as PostgreSQL does."""
    if isinstance(actual, dt.datetime) and actual.tzinfo and isinstance(expected, str):
        moment = _aware(expected)
        if moment is not None:
            return actual, moment
    return _coerce(actual, expected), expected


def _compare(op: str) -> Callable[[Any, Any], bool]:
    import operator

    fn = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}[op]

    def compare(actual: Any, expected: Any) -> bool:
        actual, expected = _operands(actual, expected)
        if actual is None or actual is MISSING:
            return False
        try:
            return bool(fn(actual, expected))
        except TypeError:
            return False

    return compare


def _eq(actual: Any, expected: Any) -> bool:
    actual, expected = _operands(actual, expected)
    return actual == expected


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    return type(value).__name__


def _same(element: Any, expected: Any) -> bool:
    """An element of a list (tags, a JSON array) matches as JSON does: true is not 1."""
    return _json_kind(element) == _json_kind(expected) and element == expected


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset))


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if _is_list(actual):
        return any(_same(element, expected) for element in actual)
    return False


def _in(actual: Any, values: tuple[Any, ...]) -> bool:
    """`in` on a scalar: equal to one of the values; on a list (tags): shares one with them."""
    if _is_list(actual):
        return any(_same(element, item) for element in actual for item in values)
    return any(_eq(actual, item) for item in values)


def _between(actual: Any, bounds: tuple[Any, Any]) -> bool:
    low, high = bounds
    return _compare("gte")(actual, low) and _compare("lte")(actual, high)


def _present(value: Any) -> bool:
    """What `exists` means, here and in SQL: a value that is not null, not "" and not an empty
    list or object (a blank text column and a customer without tags have no value)."""
    if value is None or value is MISSING:
        return False
    return not (isinstance(value, (str, list, tuple, dict)) and len(value) == 0)


def compile_predicate(node: Node) -> Predicate:
    """Compile once; the closure only resolves fields and compares."""
    if isinstance(node, All):
        parts = [compile_predicate(child) for child in node.children]
        return lambda resolve: all(part(resolve) for part in parts)
    if isinstance(node, AnyOf):
        parts = [compile_predicate(child) for child in node.children]
        return lambda resolve: any(part(resolve) for part in parts)
    if isinstance(node, Not):
        inner = compile_predicate(node.child)
        return lambda resolve: not inner(resolve)
    field, op, value = node.field, node.op, node.value
    if op == "exists":
        return lambda resolve: _present(resolve(field)) is value
    if op == "eq":
        return lambda resolve: _eq(resolve(field), value)
    if op == "ne":
        return lambda resolve: not _eq(resolve(field), value)
    if op in ("gt", "gte", "lt", "lte"):
        compare = _compare(op)
        return lambda resolve: compare(resolve(field), value)
    if op == "in":
        return lambda resolve: _in(resolve(field), value)
    if op == "not_in":
        return lambda resolve: not _in(resolve(field), value)
    if op == "contains":
        return lambda resolve: _contains(resolve(field), value)
    return lambda resolve: _between(resolve(field), value)


def fields_of(node: Node) -> list[str]:
    if isinstance(node, (All, AnyOf)):
        return [field for child in node.children for field in fields_of(child)]
    if isinstance(node, Not):
        return fields_of(node.child)
    return [node.field]


# --- SQL back end ----------------------------------------------------------------------------

# Maps a rule field to a Q for one condition; the segments app supplies the customer mapping.
ConditionToQ = Callable[[Condition], Q]

_LOOKUPS = {
    "eq": "exact",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "in": "in",
    "contains": "contains",
    "between": "range",
}


def lookup_q(lookup_path: str, condition: Condition) -> Q:
    """The plain ORM form of one condition on one column path."""
    op, value = condition.op, condition.value
    if op == "exists":
        present = Q(**{f"{lookup_path}__isnull": False})
        return present if value else ~present
    if op == "ne":
        return ~Q(**{f"{lookup_path}__exact": value}) | Q(**{f"{lookup_path}__isnull": True})
    if op == "not_in":
        return ~Q(**{f"{lookup_path}__in": value}) | Q(**{f"{lookup_path}__isnull": True})
    return Q(**{f"{lookup_path}__{_LOOKUPS[op]}": value})


def compile_q(node: Node, condition_to_q: ConditionToQ) -> Q:
    if isinstance(node, All):
        result = Q()
        for child in node.children:
            result &= compile_q(child, condition_to_q)
        return result
    if isinstance(node, AnyOf):
        parts = [compile_q(child, condition_to_q) for child in node.children]
        result = parts[0]
        for part in parts[1:]:
            result |= part
        return result
    if isinstance(node, Not):
        # SQL's NOT keeps an unknown (NULL: a missing attribute, no orders) unknown, and the
        # row is dropped; the Python predicate reads a missing value as "condition false", so
        # `not` must select it. COALESCE(condition, false) = false says exactly that.
        inner = ExpressionWrapper(compile_q(node.child, condition_to_q), BooleanField())
        return Q(Exact(Coalesce(inner, Value(False)), False))
    return condition_to_q(node)


def dig(value: Any, parts: list[str]) -> Any:
    """The value at a dotted path (already split) inside payload dicts and lists, or MISSING."""
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part, MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value

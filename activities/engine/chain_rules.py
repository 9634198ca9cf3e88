"""Conditions a chain may carry, checked as the operator meant them.

The grammar (`core.rules`) accepts any literal: a chain's event fields have no declared type,
so "event.day is between abc and (empty)" parses. An ordering comparison is only meaningful
over numbers or dates, so a chain rule is refused when a bound is missing, is text that is
neither a number nor a date, or when the two ends of a range are of different kinds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from core.labels import OPERATOR_LABELS
from core.rules import All, AnyOf, Condition, Node, Not, RuleError, numeric_text, parse

from .fields import check_chain_field

ORDERED = ("gt", "gte", "lt", "lte")
FREE_TEXT_PREFIX = "customer.attributes."
NUMBER, DATE = "number", "date"


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        return NUMBER
    if not isinstance(value, str):
        return None
    if numeric_text(value) is not None:
        return NUMBER
    try:
        if parse_date(value) or parse_datetime(value):
            return DATE
    except ValueError:
        return None
    return None


def _shown(value: Any) -> str:
    return _("(empty)") if value in (None, "") else str(value)


def _check(condition: Condition, path: str) -> None:
    value_path = f"{path}.value" if path else "value"
    op_label = str(OPERATOR_LABELS.get(condition.op, condition.op))
    # A customer attribute holds what the storefront synced (text compares as text, as in a
    # segment); only a missing end of a range is refused there.
    free_text = condition.field.startswith(FREE_TEXT_PREFIX)
    if condition.op == "between":
        kinds = []
        for index, bound in enumerate(condition.value):
            where = f"{value_path}[{index}]"
            if bound in (None, ""):
                raise RuleError(
                    where,
                    _("Give both ends of “%(op)s”.") % {"op": op_label},
                    "invalid_value",
                )
            kind = "text" if free_text and isinstance(bound, str) else _kind(bound)
            if kind is None:
                raise RuleError(
                    where,
                    _("“%(op)s” compares numbers or dates; %(value)s is neither.")
                    % {"op": op_label, "value": _shown(bound)},
                    "invalid_value",
                )
            kinds.append(kind)
        if kinds[0] != kinds[1]:
            raise RuleError(
                value_path,
                _("Both ends of “%(op)s” must be numbers, or both dates.") % {"op": op_label},
                "invalid_value",
            )
    elif condition.op in ORDERED and not free_text and _kind(condition.value) is None:
        raise RuleError(
            value_path,
            _("“%(op)s” compares numbers or dates; %(value)s is neither.")
            % {"op": op_label, "value": _shown(condition.value)},
            "invalid_value",
        )


def _walk(node: Node, path: str) -> None:
    def join(part: str) -> str:
        return f"{path}.{part}" if path else part

    if isinstance(node, (All, AnyOf)):
        group = "all" if isinstance(node, All) else "any"
        for index, child in enumerate(node.children):
            _walk(child, f"{join(group)}[{index}]")
    elif isinstance(node, Not):
        _walk(node.child, join("not"))
    else:
        _check(node, path)


def parse_chain_rule(tree: Any, *, path: str = "") -> Node:
    """Parse a chain condition (fields a chain may read, values that fit their operator);
    RuleError names the path of the first problem."""
    node = parse(tree, check_field=check_chain_field, path=path)
    _walk(node, path)
    return node

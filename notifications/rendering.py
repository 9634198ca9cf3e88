"""Notification templates: what a placeholder may name, checked at save, rendered strictly.

Templates are Jinja2 source run in a `SandboxedEnvironment` with `StrictUndefined`, and before
that every template is parsed and walked: only placeholders from the list below, literals, a
few filters and tests, `if` blocks and comparisons pass. Anything else — attribute access on a
literal (`{{ ''.__class__ }}`), calls, loops, macros, includes, names starting with `_` — is
refused with a message naming it, so no template that could misbehave is ever stored.

A value that is missing or blank in the data is *undefined*: rendering fails rather than
sending "Dear ," to a customer. A template that wants a fallback says so with `default`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

# Customer fields a template may name as `customer.<field>`; `customer.attributes.<key...>` is
# open-ended (the storefront's own attributes).
CUSTOMER_FIELDS = (
    "name",
    "external_id",
    "email",
    "phone",
    "level",
    "locale",
    "timezone",
    "birthday",
)
BROADCAST_FIELDS = ("name",)
ACTIVITY_FIELDS = ("code",)
# The customer's own coupon, in the message that follows an issue to a segment.
COUPON_FIELDS = ("code", "valid_until", "value")
# Roots that only a chain run provides (the `notify` processor); a broadcast has no event.
TRANSACTIONAL_ROOTS = frozenset({"event", "vars", "activity", "coupon"})

ALLOWED_FILTERS = (
    "default",
    "upper",
    "lower",
    "title",
    "capitalize",
    "trim",
    "truncate",
    "round",
    "int",
    "string",
    "date",
)
ALLOWED_TESTS = ("defined", "undefined", "number", "string")
ALLOWED_COMPARISONS = ("eq", "ne", "gt", "gteq", "lt", "lteq", "in", "notin")


@dataclass(frozen=True)
class TemplateProblem:
    message: str
    placeholder: str = ""

    def __str__(self) -> str:
        return self.message


class RenderError(Exception):
    """Rendering failed for this data: a placeholder without a value, or a bad filter input."""


def _format_date(value: Any, fmt: str = "%Y-%m-%d") -> str:
    if not isinstance(value, dt.date):
        raise RenderError(_("The date filter needs a date, got %(value)r.") % {"value": value})
    return value.strftime(fmt)


@functools.cache
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)
    builtin_filters = dict(env.filters)
    env.filters = {name: builtin_filters[name] for name in ALLOWED_FILTERS if name != "date"}
    env.filters["date"] = _format_date
    builtin_tests = dict(env.tests)
    env.tests = {name: builtin_tests[name] for name in ALLOWED_TESTS}
    env.globals = {}
    return env


class _Undefined(StrictUndefined):
    """Names the missing placeholder in the error (the data objects carry their path)."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        owner = self._undefined_obj
        base = getattr(owner, "_path", None) if isinstance(owner, Scope) else None
        if base is not None and isinstance(self._undefined_name, (str, int)):
            path = f"{base}.{self._undefined_name}" if base else str(self._undefined_name)
            raise RenderError(_("%(placeholder)s has no value.") % {"placeholder": path})
        if self._undefined_name is not None:
            raise RenderError(
                _("%(placeholder)s has no value.") % {"placeholder": self._undefined_name}
            )
        raise RenderError(_("A placeholder has no value."))

    __str__ = __iter__ = __len__ = __bool__ = __eq__ = __ne__ = __hash__ = (
        _fail_with_undefined_error
    )


class Scope:
    """Template data: item access only, so a key named `items` or `keys` is data, not a
    dict method, and blank values are absent (strictly undefined)."""

    __slots__ = ("_path", "_values")

    def __init__(self, values: Mapping[str, Any], path: str = "") -> None:
        self._path = path
        self._values = {
            str(key): wrap(value, f"{path}.{key}" if path else str(key))
            for key, value in values.items()
            if not _blank(value)
        }

    def __getitem__(self, key: Any) -> Any:
        return self._values[str(key)]

    def __contains__(self, key: Any) -> bool:
        return str(key) in self._values

    def __repr__(self) -> str:
        return f"<{self._path or 'data'}>"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def wrap(value: Any, path: str) -> Any:
    if isinstance(value, Mapping):
        return Scope(value, path)
    if isinstance(value, list | tuple):
        return tuple(wrap(item, f"{path}.{index}") for index, item in enumerate(value))
    return value


# --- checking ------------------------------------------------------------------------------


def _dotted(node: nodes.Node) -> list[str | int] | None:
    """`customer.attributes.vip` as ["customer", "attributes", "vip"]; None if not a path."""
    if isinstance(node, nodes.Name):
        return [node.name]
    if isinstance(node, nodes.Getattr):
        base = _dotted(node.node)
        return None if base is None else [*base, node.attr]
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _dotted(node.node)
        if base is None or not isinstance(node.arg.value, str | int):
            return None
        return [*base, node.arg.value]
    return None


def placeholder_problem(parts: list[str | int], *, transactional: bool) -> str | None:
    """Why this placeholder is not allowed, or None."""
    if any(isinstance(part, str) and part.startswith("_") for part in parts):
        return _("names starting with an underscore are not allowed")
    root, rest = parts[0], parts[1:]
    if root == "customer":
        if len(rest) == 1 and rest[0] in CUSTOMER_FIELDS:
            return None
        if len(rest) >= 2 and rest[0] == "attributes":
            return None
        return _("customer has the fields %(fields)s and attributes.<key>") % {
            "fields": ", ".join(CUSTOMER_FIELDS)
        }
    if root == "broadcast":
        return None if len(rest) == 1 and rest[0] in BROADCAST_FIELDS else _("unknown field")
    if root in TRANSACTIONAL_ROOTS:
        if not transactional:
            return _("only a message sent from an activity chain has %(root)s") % {"root": root}
        if root == "activity":
            return None if len(rest) == 1 and rest[0] in ACTIVITY_FIELDS else _("unknown field")
        if root == "coupon":
            return None if len(rest) == 1 and rest[0] in COUPON_FIELDS else _("unknown field")
        return None if rest else _("name a field of %(root)s") % {"root": root}
    return _("unknown placeholder")


def _label(parts: list[str | int]) -> str:
    return ".".join(str(part) for part in parts)


class _Checker:
    def __init__(self, *, transactional: bool) -> None:
        self.transactional = transactional
        self.problems: list[TemplateProblem] = []
        self.placeholders: set[str] = set()

    def refuse(self, message: str, placeholder: str = "") -> None:
        self.problems.append(TemplateProblem(message=message, placeholder=placeholder))

    def visit(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Template | nodes.Output):
            for child in node.iter_child_nodes():
                self.visit(child)
        elif isinstance(node, nodes.TemplateData | nodes.Const):
            return
        elif isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem):
            self.visit_path(node)
        elif isinstance(node, nodes.If):
            self.visit(node.test)
            for child in [*node.body, *node.elif_, *node.else_]:
                self.visit(child)
        elif isinstance(node, nodes.CondExpr):
            for child in (node.test, node.expr1, node.expr2):  # type: ignore[assignment]
                if child is not None:
                    self.visit(child)
        elif isinstance(node, nodes.And | nodes.Or | nodes.Concat | nodes.Not):
            for child in node.iter_child_nodes():
                self.visit(child)
        elif isinstance(node, nodes.Compare):
            self.visit(node.expr)
            for operand in node.ops:
                if operand.op not in ALLOWED_COMPARISONS:
                    self.refuse(_("The comparison %(op)s is not allowed.") % {"op": operand.op})
                self.visit(operand.expr)
        elif isinstance(node, nodes.Filter | nodes.Test):
            self.visit_filter(node)
        else:
            self.refuse(
                _(
                    "Template code is not allowed here: %(kind)s. Use placeholders such as "
                    "{{ customer.name }} and {%% if %%} blocks only."
                )
                % {"kind": type(node).__name__}
            )

    def visit_path(self, node: nodes.Node) -> None:
        parts = _dotted(node)
        if parts is None:
            self.refuse(
                _(
                    "Template code is not allowed: only placeholders such as {{ customer.name }} "
                    "may be read."
                )
            )
            return
        label = _label(parts)
        problem = placeholder_problem(parts, transactional=self.transactional)
        if problem:
            self.refuse(
                _("Unknown placeholder {{ %(placeholder)s }}: %(problem)s.")
                % {"placeholder": label, "problem": problem},
                placeholder=label,
            )
        else:
            self.placeholders.add(label)

    def visit_filter(self, node: nodes.Filter | nodes.Test) -> None:
        allowed = ALLOWED_FILTERS if isinstance(node, nodes.Filter) else ALLOWED_TESTS
        if node.name not in allowed:
            self.refuse(
                _("The %(kind)s %(name)s is not allowed (allowed: %(allowed)s).")
                % {
                    "kind": _("filter") if isinstance(node, nodes.Filter) else _("test"),
                    "name": node.name,
                    "allowed": ", ".join(allowed),
                }
            )
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.refuse(_("Filters take literal arguments only."))
        if node.node is not None:
            self.visit(node.node)
        for arg in [*node.args, *(kwarg.value for kwarg in node.kwargs)]:
            if not isinstance(arg, nodes.Const):
                self.refuse(_("Filters take literal arguments only."))


def check_source(source: str, *, transactional: bool = False) -> list[TemplateProblem]:
    """Every problem in one template text (empty when it may be saved)."""
    return _inspect(source, transactional=transactional)[0]


def placeholders(source: str, *, transactional: bool = True) -> set[str]:
    return _inspect(source, transactional=transactional)[1]


def _inspect(source: str, *, transactional: bool) -> tuple[list[TemplateProblem], set[str]]:
    try:
        tree = environment().parse(source)
    except TemplateSyntaxError as error:
        return [
            TemplateProblem(
                _("Template syntax error on line %(line)s: %(message)s")
                % {"line": error.lineno, "message": error.message}
            )
        ], set()
    checker = _Checker(transactional=transactional)
    checker.visit(tree)
    return checker.problems, checker.placeholders


def uses_transactional_data(sources: Iterable[str]) -> bool:
    return any(
        label.split(".", 1)[0] in TRANSACTIONAL_ROOTS
        for source in sources
        for label in placeholders(source)
    )


# --- rendering -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return environment().from_string(source)


def render(source: str, data: Scope) -> str:
    """Render checked source; raises RenderError naming what is missing."""
    if not source:
        return ""
    try:
        return _compiled(source).render(data._values)
    except RenderError:
        raise
    except (UndefinedError, SecurityError, TypeError, ValueError) as error:
        raise RenderError(str(error)) from error


def customer_data(customer: Any) -> dict[str, Any]:
    data = {name: getattr(customer, name, None) for name in CUSTOMER_FIELDS}
    data["attributes"] = customer.attributes if isinstance(customer.attributes, dict) else {}
    return data

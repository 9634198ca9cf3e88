"""A condition tree written out as one line of text, in the operator's language, for histories
and summaries: `event.score at least 60 and (customer.level equals gold or ...)`."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from core.labels import OPERATOR_LABELS


def literal_text(value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value is None or value == "":
        return _("(empty)")
    if isinstance(value, (list, tuple)):
        return ", ".join(literal_text(v) for v in value)
    return str(value)


def _is_group(node: Any) -> bool:
    return isinstance(node, dict) and len(node.get("all") or node.get("any") or []) > 1


def condition_text(tree: Any) -> str:
    """A condition tree as one line: `event.score is at least 60 and (a or b)`."""
    if not isinstance(tree, dict) or not tree:
        return _("always")
    if "all" in tree or "any" in tree:
        group = "all" if "all" in tree else "any"
        joiner = _(" and ") if group == "all" else _(" or ")
        children = tree.get(group) or []
        text = joiner.join(
            f"({condition_text(child)})" if _is_group(child) else condition_text(child)
            for child in children
        )
        return text or _("always")
    if "not" in tree:
        return _("not (%(condition)s)") % {"condition": condition_text(tree["not"])}
    op = tree.get("op", "eq")
    label = str(OPERATOR_LABELS.get(op, op))
    field = tree.get("field", "")
    if op == "exists":
        return (
            _("%(field)s is present") if tree.get("value", True) else _("%(field)s is absent")
        ) % {"field": field}
    if op == "between" and isinstance(tree.get("value"), list) and len(tree["value"]) == 2:
        low, high = tree["value"]
        return _("%(field)s is between %(low)s and %(high)s") % {
            "field": field,
            "low": literal_text(low),
            "high": literal_text(high),
        }
    return f"{field} {label} {literal_text(tree.get('value'))}"

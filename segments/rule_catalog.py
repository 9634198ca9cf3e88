"""The fields a segment rule may read, described for the admin's rule builder: a label in the
operator's language, a value type (so the value input fits), the operators that type allows
and, for tags, the existing tags to pick from. Derived from the same declarations the rule
compiler checks against (`segments.rules`), so the builder never offers what a save refuses.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from segments.models import Customer, Tag
from segments.rules import (
    INTEGER,
    MAX_WINDOW_DAYS,
    NUMBER,
    OPERATORS_BY_TYPE,
    PROFILE_TYPES,
    TAGS,
)

# More tags than this are typed, not picked from a list.
MAX_TAG_CHOICES = 500
ANY_OPERATOR = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "in",
    "not_in",
    "contains",
    "exists",
)


def field(
    name: str,
    label: str,
    value_type: str,
    group: str,
    *,
    operators: tuple[str, ...] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of a field picker (the shape `core/static/gambit/builders.js` reads)."""
    return {
        "name": name,
        "label": label,
        "type": value_type,
        "group": group,
        "operators": list(operators if operators is not None else OPERATORS_BY_TYPE[value_type]),
        **extra,
    }


def tag_choices() -> list[list[str]]:
    tags = Tag.objects.order_by("code").values_list("code", "name")[:MAX_TAG_CHOICES]
    return [[code, f"{name} ({code})" if name and name != code else code] for code, name in tags]


def customer_fields(*, with_orders: bool) -> list[dict[str, Any]]:
    """Customer fields (profile, tags, attributes) and, for segments, order aggregates."""
    group = _("Customer")
    fields = []
    for name, value_type in PROFILE_TYPES.items():
        if value_type == TAGS:
            continue
        label = str(Customer._meta.get_field(name).verbose_name)
        fields.append(field(f"customer.{name}", label, value_type, group))
    fields.append(field("customer.tags", _("tags"), TAGS, group, choices=tag_choices()))
    fields.append(
        field(
            "customer.attributes.",
            _("attribute (give its key)"),
            "any",
            group,
            operators=ANY_OPERATOR,
            prefix=True,
        )
    )
    if not with_orders:
        return fields
    orders = _("Orders")
    return [
        *fields,
        field("customer.orders.paid_count", _("paid orders, ever"), INTEGER, orders),
        field(
            "customer.orders.paid_last_{n}d",
            _("paid orders in the last N days"),
            INTEGER,
            orders,
            window={
                "pattern": r"^customer\.orders\.paid_last_(\d+)d$",
                "label": _("days"),
                "min": 1,
                "max": MAX_WINDOW_DAYS,
                "default": 30,
            },
        ),
        field("customer.orders.total_spent", _("total spent on paid orders"), NUMBER, orders),
        field(
            "customer.orders.days_since_last",
            _("days since the last paid order"),
            INTEGER,
            orders,
            operators=(*OPERATORS_BY_TYPE[INTEGER], "exists"),
        ),
    ]


def segment_fields() -> list[dict[str, Any]]:
    return customer_fields(with_orders=True)

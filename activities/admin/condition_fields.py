"""The condition builder's field picker for a chain: what this chain's activities actually have.

The channel's payload fields (from its JSON Schema, with their types and choices), the balances
of the benefits the template's activities define, the values set_context steps keep on the
participation, customer fields, other activities' values and this run's variables. Each entry
has a label in the operator's language and a type, so the value input fits.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from activities.models import ActivityState, Benefit, Chain, ChainStep
from segments.rule_catalog import customer_fields, field

ANY = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains", "exists")
BY_TYPE = {
    "integer": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists"),
    "string": ("eq", "ne", "in", "not_in", "contains", "exists"),
    "bool": ("eq", "ne", "exists"),
    "date": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "exists"),
    "datetime": ("gt", "gte", "lt", "lte", "between", "exists"),
    "list": ("contains", "exists"),
}
MAX_OTHER_ACTIVITIES = 50
MAX_PAYLOAD_FIELDS = 200


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "boolean":
        return "bool"
    if kind == "array":
        return "list"
    if kind == "string" and schema.get("format") in ("date", "date-time"):
        return "date" if schema["format"] == "date" else "datetime"
    return kind if kind in ("integer", "number", "string") else "any"


def payload_fields(schema: Any, *, group: str) -> list[dict[str, Any]]:
    """`event.<path>` for each property of a payload schema (nested objects flattened)."""
    out: list[dict[str, Any]] = []

    def walk(node: Any, path: str, title: str) -> None:
        if not isinstance(node, dict) or len(out) >= MAX_PAYLOAD_FIELDS:
            return
        for name, prop in (node.get("properties") or {}).items():
            if not isinstance(prop, dict):
                continue
            label = str(prop.get("title") or name)
            full_label = f"{title} / {label}" if title else label
            if prop.get("type") == "object" and prop.get("properties"):
                walk(prop, f"{path}{name}.", full_label)
                continue
            kind = _schema_type(prop)
            extra: dict[str, Any] = {}
            if isinstance(prop.get("enum"), list):
                extra["choices"] = [[v, str(v)] for v in prop["enum"] if isinstance(v, str)]
            out.append(
                field(
                    f"{path}{name}",
                    full_label,
                    kind,
                    group,
                    operators=BY_TYPE.get(kind, ANY),
                    **extra,
                )
            )

    walk(schema, "event.", "")
    return out


def _kept_keys(chain: Chain) -> list[str]:
    """Keys set_context steps of the template keep on the participation."""
    steps = ChainStep.objects.filter(chain__template_id=chain.template_id, processor="set_context")
    keys: set[str] = set()
    for config in steps.values_list("config", flat=True):
        if isinstance(config, dict) and config.get("persist"):
            keys.update(k for k in (config.get("values") or {}) if isinstance(k, str))
    return sorted(keys)


def chain_condition_fields(*, chain: Chain | None) -> list[dict[str, Any]]:
    event = _("Event")
    activity = _("This activity")
    fields: list[dict[str, Any]] = []
    if chain is not None:
        event = _("Event %(channel)s") % {"channel": chain.channel.name or chain.channel.code}
        fields += payload_fields(chain.channel.payload_schema, group=event)
    fields.append(
        field(
            "event.",
            _("other event field (give its name)"),
            "any",
            event,
            operators=ANY,
            prefix=True,
        )
    )
    if chain is not None:
        benefits = (
            Benefit.objects.filter(activity__template_id=chain.template_id)
            .order_by("code")
            .values_list("code", "name")
            .distinct()
        )
        seen = set()
        for code, name in benefits:
            if code in seen:
                continue
            seen.add(code)
            fields.append(
                field(
                    f"participation.{code}",
                    _("%(benefit)s held, unused") % {"benefit": name or code},
                    "integer",
                    activity,
                    operators=BY_TYPE["integer"],
                )
            )
        for key in _kept_keys(chain):
            fields.append(
                field(
                    f"participation.{key}",
                    _("kept value %(key)s") % {"key": key},
                    "any",
                    activity,
                    operators=ANY,
                )
            )
    fields.append(
        field(
            "participation.",
            _("other value kept for the customer (give its key)"),
            "any",
            activity,
            operators=ANY,
            prefix=True,
        )
    )
    fields.append(
        field(
            "vars.",
            _("value set earlier in this run (give its key)"),
            "any",
            activity,
            operators=ANY,
            prefix=True,
        )
    )
    journey = _("Journey")
    fields.append(
        field(
            "wait.outcome",
            _("how the last wait ended"),
            "string",
            journey,
            operators=BY_TYPE["string"],
            choices=[
                ["event", _("the awaited event came")],
                ["timeout", _("timed out")],
                ["elapsed", _("the wait was over")],
            ],
        )
    )
    fields.append(
        field(
            "wait.event.",
            _("field of the awaited event (give its name)"),
            "any",
            journey,
            operators=ANY,
            prefix=True,
        )
    )
    fields.append(field("now", _("now"), "datetime", activity, operators=BY_TYPE["datetime"]))
    fields += customer_fields(with_orders=False)
    others = _("Other activities")
    exclude = {chain.template_id} if chain is not None else set()
    from_activities = (
        Benefit.objects.exclude(activity__template_id__in=exclude)
        .exclude(activity__state__in=[ActivityState.ARCHIVED])
        .order_by("activity__code", "code")
        .values_list("activity__code", "activity__name", "code", "name")[:MAX_OTHER_ACTIVITIES]
    )
    for code, name, benefit, benefit_name in from_activities:
        fields.append(
            field(
                f"activities.{code}.{benefit}",
                _("%(activity)s: %(benefit)s held, unused")
                % {"activity": name or code, "benefit": benefit_name or benefit},
                "integer",
                others,
                operators=BY_TYPE["integer"],
            )
        )
    fields.append(
        field(
            "activities.",
            _("another activity's value (give activity code.key)"),
            "any",
            others,
            operators=ANY,
            prefix=True,
        )
    )
    return fields

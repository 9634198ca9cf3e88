"""An activity as a definition document: the canonical form the importer reads back.

Canonical means defaults are left out where the appendix leaves them out (a step's empty
config, a null `when`, `on_error: abort`, a benefit's unset stock, a coupon's default code
settings, coupons following orders), times are wall times and coupon validity days in the
activity's zone, amounts are text with two decimals, and chains, steps and benefits keep the
order they were created in. Exporting an imported canonical document gives
that document back exactly.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import yaml

from activities.models import (
    Activity,
    BenefitKind,
    Chain,
    CodeSource,
    ErrorPolicy,
    StrategyTemplate,
)
from activities.models.activity import ExhaustionPolicy
from core.timezones import to_local

from .coupon_terms import export_coupon


def amount(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def wall_time(instant: Any, timezone_name: str) -> str:
    return to_local(instant, timezone_name).replace(tzinfo=None).isoformat(timespec="seconds")


def canonical_step(
    *, processor: str, config: dict[str, Any] | None, when: Any, on_error: str
) -> dict[str, Any]:
    step: dict[str, Any] = {"processor": processor}
    if config:
        step["config"] = config
    if when is not None:
        step["when"] = when
    if on_error != ErrorPolicy.ABORT:
        step["on_error"] = on_error
    return step


def export_chain(chain: Chain) -> dict[str, Any]:
    return {
        "channel": chain.channel.code,
        "lock": chain.requires_lock,
        "steps": [
            canonical_step(
                processor=step.processor,
                config=step.config,
                when=step.when,
                on_error=step.on_error,
            )
            for step in chain.steps.all()
        ],
    }


def export_chains(template: StrategyTemplate) -> list[dict[str, Any]]:
    chains = template.chains.select_related("channel").prefetch_related("steps").order_by("pk")
    return [export_chain(chain) for chain in chains]


def export_definition(*, activity: Activity) -> dict[str, Any]:
    """The activity, its template's chains and steps, and its benefits, as one document."""
    template = activity.template
    document: dict[str, Any] = {"code": activity.code, "name": activity.name}
    document["template"] = template.code
    if template.name and template.name != template.code:
        document["template_name"] = template.name
    document["timezone"] = activity.timezone
    document["starts_at"] = (
        wall_time(activity.starts_at, activity.timezone) if activity.starts_at else None
    )
    document["ends_at"] = (
        wall_time(activity.ends_at, activity.timezone) if activity.ends_at else None
    )
    document["segment"] = activity.segment.code if activity.segment is not None else None
    if activity.budget_total is not None:
        document["budget"] = amount(activity.budget_total)
    if activity.on_exhausted != ExhaustionPolicy.PAUSE:
        document["on_exhausted"] = activity.on_exhausted
    if not activity.coupons_follow_orders:
        document["coupons_follow_orders"] = False
    if template.gameplay:
        document["gameplay"] = {
            "code": template.gameplay,
            "parameters": template.gameplay_parameters,
        }
    benefits = []
    for benefit in activity.benefits.order_by("pk"):
        item: dict[str, Any] = {"code": benefit.code, "kind": benefit.kind}
        if benefit.name:
            item["name"] = benefit.name
        if benefit.stock_total is not None and benefit.code_source != CodeSource.POOL:
            item["stock"] = benefit.stock_total
        if benefit.per_customer_limit is not None:
            item["per_customer_limit"] = benefit.per_customer_limit
        if benefit.value is not None:
            item["value"] = amount(benefit.value)
        if benefit.kind == BenefitKind.COUPON and (
            coupon := export_coupon(benefit, activity.timezone)
        ):
            item["coupon"] = coupon
        benefits.append(item)
    document["benefits"] = benefits
    document["chains"] = export_chains(template)
    return document


def dump_definition(document: dict[str, Any], *, format: str = "yaml") -> str:
    if format == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)

"""Compiled configuration, cached per process and keyed by version stamps.

The running-activity query runs for every event, so a pause or an edit is seen by the next event
on every worker; only the compilation (schemas checked, rules compiled) is reused, and its key
changes with every edit (template version, activity config version).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from activities.models import Activity, Benefit, BenefitKind, Chain, CodeSource, ErrorPolicy
from core.rules import Predicate, compile_predicate, parse

from . import registry

if TYPE_CHECKING:
    from .processors.base import Processor


@dataclass(frozen=True)
class BenefitConfig:
    id: int
    code: str
    kind: str
    value: Decimal | None
    limited_stock: bool
    per_customer_limit: int | None
    stackable: bool
    coupon: CouponSpec | None = None


@dataclass(frozen=True)
class CouponSpec:
    """How a coupon benefit makes its codes and validity."""

    from_pool: bool
    prefix: str
    length: int
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    valid_days: int | None


@dataclass(frozen=True)
class ActivityConfig:
    id: int
    code: str
    timezone: str
    has_budget: bool
    segment_id: int | None
    benefits: dict[str, BenefitConfig]


@dataclass(frozen=True)
class CompiledStep:
    index: int
    processor: Processor
    when: Predicate | None
    abort_on_error: bool


@dataclass(frozen=True)
class CompiledChain:
    template_id: int
    channel_id: int
    requires_lock: bool
    steps: tuple[CompiledStep, ...]
    # The steps as stored ({"processor", "config", "when", "on_error"}): what a journey that
    # waits keeps, so it resumes on this version whatever is edited meanwhile.
    definition: tuple[dict[str, Any], ...] = ()


def compile_steps(definition: Iterable[Mapping[str, Any]]) -> tuple[CompiledStep, ...]:
    steps = []
    for index, step in enumerate(definition):
        processor_class = registry.get(step["processor"])
        if processor_class is None:
            raise LookupError(f"Unknown processor {step['processor']!r}.")
        steps.append(
            CompiledStep(
                index=index,
                processor=processor_class(step["config"] or {}),
                when=compile_predicate(parse(step["when"])) if step["when"] else None,
                abort_on_error=step["on_error"] == ErrorPolicy.ABORT,
            )
        )
    return tuple(steps)


@lru_cache(maxsize=1024)
def compiled_chain(template_id: int, template_version: int, channel_id: int) -> CompiledChain:
    chain = Chain.objects.prefetch_related("steps").get(
        template_id=template_id, channel_id=channel_id
    )
    definition = tuple(
        {"processor": s.processor, "config": s.config, "when": s.when, "on_error": s.on_error}
        for s in chain.steps.all()
    )
    return CompiledChain(
        template_id=template_id,
        channel_id=channel_id,
        requires_lock=chain.requires_lock,
        steps=compile_steps(definition),
        definition=definition,
    )


@lru_cache(maxsize=1024)
def activity_config(activity_id: int, config_version: int) -> ActivityConfig:
    activity = Activity.objects.prefetch_related("benefits").get(pk=activity_id)
    return ActivityConfig(
        id=activity.pk,
        code=activity.code,
        timezone=activity.timezone,
        has_budget=activity.budget_total is not None,
        segment_id=activity.segment_id,
        benefits={
            benefit.code: BenefitConfig(
                id=benefit.pk,
                code=benefit.code,
                kind=benefit.kind,
                value=benefit.value,
                limited_stock=benefit.stock_total is not None,
                per_customer_limit=benefit.per_customer_limit,
                stackable=benefit.stackable,
                coupon=coupon_spec(benefit),
            )
            for benefit in activity.benefits.all()
        },
    )


def coupon_spec(benefit: Benefit) -> CouponSpec | None:
    if benefit.kind != BenefitKind.COUPON:
        return None
    return CouponSpec(
        from_pool=benefit.code_source == CodeSource.POOL,
        prefix=benefit.code_prefix,
        length=benefit.code_length,
        valid_from=benefit.valid_from,
        valid_until=benefit.valid_until,
        valid_days=benefit.valid_days,
    )

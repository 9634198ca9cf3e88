"""Activities with a split step, and events fired through the real event service."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from activities.models import Activity, ChainRun, Event, StrategyTemplate
from activities.services.events import accept_event, process_event
from tests.factories import (
    ActivityFactory,
    BenefitFactory,
    ChainFactory,
    ChannelFactory,
    StepFactory,
    TemplateFactory,
    make_api_key,
)

_keys = itertools.count()


def split_config(
    *, weights: tuple[float, float] = (1, 1), double_steps: list[dict] | None = None
) -> dict[str, Any]:
    """Control (no steps) against "double" (two coupons)."""
    return {
        "key": "reward",
        "variants": [
            {"name": "control", "weight": weights[0], "steps": []},
            {
                "name": "double",
                "weight": weights[1],
                "steps": double_steps
                if double_steps is not None
                else [
                    {"processor": "grant_benefit", "config": {"benefit": "coupon", "quantity": 2}}
                ],
            },
        ],
    }


def split_activity(
    *, code: str = "ab", config: dict[str, Any] | None = None, requires_lock: bool = True
) -> Activity:
    template = TemplateFactory(code=f"{code}-template")
    chain = ChainFactory(
        template=template,
        channel=ChannelFactory(code="quiz.completed"),
        requires_lock=requires_lock,
    )
    StepFactory(chain=chain, position=0, processor="split", config=config or split_config())
    StepFactory(chain=chain, position=1, processor="build_result")
    activity = ActivityFactory(code=code, template=template, running=True)
    BenefitFactory(activity=activity, code="coupon", kind="coupon")
    return activity


def set_split(activity: Activity, config: dict[str, Any]) -> None:
    """Change the split's configuration in place and bump the template's version stamp."""
    step = activity.template.chains.get().steps.get(processor="split")
    step.config = config
    step.save(update_fields=["config"])
    template = StrategyTemplate.objects.get(pk=activity.template_id)
    StrategyTemplate.objects.filter(pk=template.pk).update(version=template.version + 1)


def fire(
    channel: str, customer: str, payload: dict | None = None, *, at: dt.datetime | None = None
) -> Event:
    """Accept and process one storefront event; `at` backdates its acceptance instant."""
    client = getattr(fire, "client", None)
    if client is None:
        client = fire.client = make_api_key()[0]  # type: ignore[attr-defined]
    event, _created = accept_event(
        client=client,
        idempotency_key=f"k-{next(_keys)}",
        channel_code=channel,
        customer_external_id=customer,
        payload=payload or {},
    )
    if at is not None:
        Event.objects.filter(pk=event.pk).update(created_at=at)
    process_event(event_id=event.pk)
    return event


def run_of(event: Event) -> ChainRun:
    return ChainRun.objects.get(event=event)

"""Journey activities for tests and benchmarks, built from factories (the shipped definitions
are imported in their own test)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from activities.engine.cache import compiled_chain
from activities.engine.journeys import journey_version_id
from activities.models import Activity, ChainRun, Channel, Event, RunOutcome, WaitingRun
from activities.services.events import accept_event
from core.models import StorefrontKey
from segments.models import Customer
from tests.factories import (
    ActivityFactory,
    BenefitFactory,
    ChainFactory,
    ChannelFactory,
    StepFactory,
    make_api_key,
)
from tests.notifications.factories import NotificationTemplateFactory

TIMED_OUT = {"field": "wait.outcome", "op": "eq", "value": "timeout"}


def build_points_journey(*, code: str, channel: str = "signed.up", wait: str = "1m") -> Activity:
    """channel -> wait a while -> one point: the smallest journey that grants."""
    activity = build_journey(
        code=code,
        channel=channel,
        steps=[
            {"processor": "wait_for", "config": {"duration": wait}},
            {"processor": "grant_benefit", "config": {"benefit": "points", "quantity": 1}},
        ],
    )
    BenefitFactory(activity=activity, code="points", kind="points")
    return activity


def build_journey(
    *,
    code: str,
    channel: str,
    steps: list[dict[str, Any]],
    running: bool = True,
    zone: str = "Asia/Shanghai",
) -> Activity:
    chain = ChainFactory(channel=ChannelFactory(code=channel))
    for position, step in enumerate(steps):
        StepFactory(
            chain=chain,
            position=position,
            processor=step["processor"],
            config=step.get("config", {}),
            when=step.get("when"),
        )
    activity = ActivityFactory(code=code, template=chain.template, running=running, timezone=zone)
    return activity


def build_unpaid_reminder(*, code: str = "unpaid", timeout: str = "30m") -> Activity:
    """order.placed -> wait for the same order's order.paid -> else notify and a coupon."""
    NotificationTemplateFactory(
        code="unpaid-reminder",
        subject="Your order {{ event.order }} is waiting",
        body="Pay within a day and save with the coupon.",
    )
    ChannelFactory(code="order.paid")
    ChannelFactory(code="order.cancelled")
    activity = build_journey(
        code=code,
        channel="order.placed",
        steps=[
            {
                "processor": "journey_rules",
                "config": {"exit_on": [{"channel": "order.cancelled", "same": ["order"]}]},
            },
            {
                "processor": "wait_for_event",
                "config": {"channel": "order.paid", "timeout": timeout, "same": ["order"]},
            },
            {"processor": "notify", "config": {"template": "unpaid-reminder"}, "when": TIMED_OUT},
            {
                "processor": "grant_benefit",
                "config": {"benefit": "pay-now", "quantity": 1},
                "when": TIMED_OUT,
            },
        ],
    )
    BenefitFactory(activity=activity, code="pay-now", per_customer_limit=None)
    return activity


def fire(channel: str, customer: str, payload: dict[str, Any], key: str) -> Event:
    client = StorefrontKey.objects.filter(name="journeys").first() or make_api_key("journeys")[0]
    event, _ = accept_event(
        client=client,
        idempotency_key=key,
        channel_code=channel,
        customer_external_id=customer,
        payload=payload,
    )
    return event


def make_waiting_runs(*, activity: Activity, channel: str, count: int, due_at: Any) -> list[int]:
    """`count` runs of `activity` waiting at its first wait step, all due at `due_at`, written
    in bulk (the first goes through the engine, which writes the journey version)."""
    channel_row = Channel.objects.get(code=channel)
    chain = compiled_chain(activity.template_id, activity.template.version, channel_row.pk)
    journey_id = journey_version_id(chain=chain, template_version=activity.template.version)
    step = next(s.index for s in chain.steps if s.processor.key.startswith("wait"))
    now = timezone.now()
    run_ids: list[int] = []
    # 2,000 rows a statement stays under PostgreSQL's 65,535 parameters for any of these.
    for start in range(0, count, 2000):
        size = min(2000, count - start)
        customers = Customer.objects.bulk_create(
            [Customer(external_id=f"{activity.code}-w-{start + i}") for i in range(size)]
        )
        events = Event.objects.bulk_create(
            [
                Event(
                    idempotency_key=f"{activity.code}-w-{start + i}",
                    request_hash="",
                    channel=channel_row,
                    customer=customer,
                    state="done",
                    dispatched_at=now,
                    finished_at=now,
                )
                for i, customer in enumerate(customers)
            ]
        )
        runs = ChainRun.objects.bulk_create(
            [
                ChainRun(
                    event=event,
                    activity=activity,
                    customer_id=event.customer_id,
                    outcome=RunOutcome.WAITING,
                    steps=[{"processor": "wait_for", "outcome": "passed", "ms": 0}],
                    template_version=activity.template.version,
                )
                for event in events
            ]
        )
        WaitingRun.objects.bulk_create(
            [
                WaitingRun(
                    run=run,
                    activity=activity,
                    customer_id=run.customer_id,
                    journey_id=journey_id,
                    step=step,
                    due_at=due_at,
                )
                for run in runs
            ]
        )
        run_ids.extend(run.pk for run in runs)
    return run_ids

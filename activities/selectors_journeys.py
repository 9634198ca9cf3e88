"""Reads about journeys: entry rules, waiting counts, a run's wait."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count

from activities.engine.waits import WAIT_PROCESSORS
from activities.models import (
    Activity,
    Chain,
    ChainRun,
    ChainStep,
    RunOutcome,
    WaitingRun,
    WaitState,
)

# Runs that entered the journey: refused and skipped ones did not.
ENTERED = (
    RunOutcome.WAITING,
    RunOutcome.GRANTED,
    RunOutcome.COMPLETED,
    RunOutcome.FAILED,
    RunOutcome.CANCELLED,
)


def entered_before(
    *,
    activity_id: int,
    customer_id: int,
    channel_id: int,
    run_id: int,
    since: dt.datetime | None = None,
) -> bool:
    """Whether the customer entered this chain of the activity before (since `since`)."""
    runs = ChainRun.objects.filter(
        activity_id=activity_id,
        customer_id=customer_id,
        event__channel_id=channel_id,
        outcome__in=ENTERED,
    ).exclude(pk=run_id)
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    return runs.exists()


def still_waiting(*, activity_id: int, customer_id: int, channel_id: int) -> bool:
    return WaitingRun.objects.filter(
        activity_id=activity_id,
        customer_id=customer_id,
        journey__channel_id=channel_id,
        state=WaitState.WAITING,
    ).exists()


@dataclass(frozen=True)
class WaitingAtStep:
    channel: str
    step: int
    processor: str
    waiting: int


def waiting_per_step(*, activity: Activity) -> list[WaitingAtStep]:
    """Customers waiting now at each wait step of the activity's chains (0 included), and at
    steps of older versions that still hold someone."""
    counts = {
        (channel, step): n
        for channel, step, n in WaitingRun.objects.filter(
            activity_id=activity.pk, state=WaitState.WAITING
        )
        .values_list("journey__channel__code", "step")
        .annotate(n=Count("pk"))
        .order_by()
    }
    rows: dict[tuple[str, int], WaitingAtStep] = {}
    chains = Chain.objects.filter(template_id=activity.template_id).select_related("channel")
    for chain in chains.prefetch_related("steps"):
        for index, step in enumerate(chain.steps.all()):
            if step.processor in WAIT_PROCESSORS:
                key = (chain.channel.code, index)
                rows[key] = WaitingAtStep(key[0], index, step.processor, counts.get(key, 0))
    for (channel, index), n in counts.items():
        if (channel, index) not in rows:
            rows[(channel, index)] = WaitingAtStep(channel, index, "", n)
    return [rows[key] for key in sorted(rows)]


def customer_waits(*, activity_id: int, external_id: str) -> list[dict[str, object]]:
    """The customer's runs waiting in the activity now, soonest first (the progress API)."""
    rows = (
        WaitingRun.objects.filter(
            activity_id=activity_id, customer__external_id=external_id, state=WaitState.WAITING
        )
        .select_related("channel", "journey__channel")
        .order_by("due_at")
    )
    return [
        {
            "run": row.run_id,
            "chain": row.journey.channel.code,
            "step": row.step + 1,
            "resumes_at": row.due_at,
            "awaiting": row.channel.code if row.channel else None,
        }
        for row in rows
    ]


def has_wait_steps(*, template_id: int) -> bool:
    return ChainStep.objects.filter(
        chain__template_id=template_id, processor__in=WAIT_PROCESSORS
    ).exists()

"""Dry-run from a given state: the gameplay writes the state ("a 6-day streak ending
yesterday") inside the dry-run's rolled-back transaction, then the real runner runs."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from activities.models import Activity, Channel
from activities.services.dry_run import DryRunOutcome, dry_run
from segments.models import Customer

from .base import Gameplay, get


def gameplay_of(activity: Activity) -> Gameplay | None:
    return get(activity.template.gameplay) if activity.template.gameplay else None


def dry_run_from_state(
    *,
    activity: Activity,
    channel: Channel,
    customer_external_id: str,
    payload: dict[str, Any],
    state: dict[str, Any],
) -> DryRunOutcome:
    gameplay = gameplay_of(activity)

    def prepare(customer: Customer) -> None:
        if gameplay is not None:
            gameplay.start_state(
                activity=activity, customer=customer, state=state, now=timezone.now()
            )

    return dry_run(
        activity=activity,
        channel=channel,
        customer_external_id=customer_external_id,
        payload=payload,
        prepare=prepare if state else None,
    )

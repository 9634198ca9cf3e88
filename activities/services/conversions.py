"""Conversions: every processed event counted towards the experiments' goals it meets.

For each goal on the event's channel whose condition the payload meets, a customer exposed
within the goal's window before the event converts, once: Conversion is unique per (goal,
customer), so the same event delivered again, or the customer's second order, adds nothing.
The instants compared are UTC: exposure (the run's clock, or the delivery's `sent_at` for a
broadcast) and the event's acceptance (`Event.created_at`); a conversion counts when
exposure < event <= exposure + window.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.utils.translation import gettext as _

from activities.models import Assignment, Conversion, ConversionGoal, Event, ExperimentKind
from activities.selectors import live_conversion_goals
from core.rules import MISSING, Predicate, RuleError, compile_predicate, dig, parse
from notifications.models import Delivery, DeliveryStatus


def check_goal_field(field: str) -> None:
    if not field.startswith("event.") or len(field) == len("event."):
        raise RuleError("", _("A goal's condition reads the event payload: event.<field>."))


def goal_predicate(condition: Any) -> Predicate | None:
    """The goal condition compiled to a predicate over `event.<payload path>`."""
    if not condition:
        return None
    return compile_predicate(parse(condition, check_field=check_goal_field))


def _meets(goal: ConversionGoal, payload: dict[str, Any]) -> bool:
    predicate = goal_predicate(goal.condition)
    if predicate is None:
        return True

    def resolve(path: str) -> Any:
        root, _, rest = path.partition(".")
        return dig(payload, rest.split(".")) if root == "event" and rest else MISSING

    return predicate(resolve)


def _exposures(
    *, customer_id: int, goals: list[ConversionGoal]
) -> dict[int, tuple[str, dt.datetime]]:
    """Per experiment: (variant, exposure instant) of this customer, for these goals'
    experiments. A split's exposure is its assignment; a broadcast's is the test message
    actually sent to them (a customer whose message was skipped saw nothing)."""
    kinds = {goal.experiment_id: goal.experiment.kind for goal in goals}
    found: dict[int, tuple[str, dt.datetime]] = {}
    splits = [pk for pk, kind in kinds.items() if kind == ExperimentKind.ACTIVITY]
    if splits:
        for experiment_id, variant, at in Assignment.objects.filter(
            customer_id=customer_id, experiment_id__in=splits
        ).values_list("experiment_id", "variant", "assigned_at"):
            found[experiment_id] = (variant, at)
    broadcasts = [pk for pk, kind in kinds.items() if kind == ExperimentKind.BROADCAST]
    if broadcasts:
        for experiment_id, variant, sent_at in Delivery.objects.filter(
            customer_id=customer_id,
            status=DeliveryStatus.SENT,
            sent_at__isnull=False,
            broadcast__experiment_variant__experiment_id__in=broadcasts,
        ).values_list(
            "broadcast__experiment_variant__experiment_id",
            "broadcast__experiment_variant__name",
            "sent_at",
        ):
            if sent_at is not None:
                found[experiment_id] = (variant, sent_at)
    return found


def record_conversions(*, event: Event) -> int:
    """Count the event as a conversion wherever it is one; returns how many were new.
    Idempotent: call it for every processed event, as often as the event is delivered."""
    goals = [
        goal
        for goal in live_conversion_goals(channel_id=event.channel_id).select_related("experiment")
        if _meets(goal, event.payload or {})
    ]
    if not goals:
        return 0
    at = event.created_at
    exposures = _exposures(customer_id=event.customer_id, goals=goals)
    rows: list[list[Any]] = []
    for goal in goals:
        exposure = exposures.get(goal.experiment_id)
        if exposure is None:
            continue
        variant, exposed_at = exposure
        if exposed_at < at <= exposed_at + goal.window:
            rows.append(
                [goal.pk, goal.experiment_id, event.customer_id, variant, event.pk, exposed_at, at]
            )
    if not rows:
        return 0
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Conversion._meta.db_table}
                    (goal_id, experiment_id, customer_id, variant, event_id, exposed_at,
                     converted_at)
                VALUES {values}
                ON CONFLICT (goal_id, customer_id) DO NOTHING
                RETURNING 1""",  # noqa: S608  (table name from the model, values bound)
            [value for row in rows for value in row],
        )
        return len(cursor.fetchall())

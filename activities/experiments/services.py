"""Experiment writes: exposures from the `split` processor, conversion goals, conversions.

Exposure. The first run that reaches a split for a customer places them by the hash
(`assignment.choose`) and stores the placement (Assignment, unique per experiment and
customer); every later run reads it back, so weights changed later only place customers not
seen before. Two first runs at once for one customer both insert with ON CONFLICT DO NOTHING
and read back the row that won. A run that is rejected or fails after the split rolls back its
writes, but the exposure is kept (`ctx.keep`): the customer was exposed to the variant, and
leaving them out would bias the comparison towards variants that reject less.

Conversion. Every processed event passes through `record_conversions`: for each goal on the
event's channel whose condition the payload meets, a customer exposed within the goal's window
before the event converts, once: Conversion is unique per (goal, customer), so the same event
delivered again, or the customer's second order, adds nothing. The instants compared are UTC:
exposure (the run's clock, or the delivery's `sent_at` for a broadcast) and the event's
acceptance (`Event.created_at`); a conversion counts when exposure < event <= exposure + window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.utils.translation import gettext as _

from activities.engine.errors import ConfigError
from activities.models import (
    Activity,
    Assignment,
    AssignmentPhase,
    ChainStep,
    Channel,
    Conversion,
    ConversionGoal,
    Event,
    Experiment,
    ExperimentKind,
    ExperimentState,
)
from activities.services.configuration import error_details
from core.errors import InvalidConfiguration
from core.rules import MISSING, Predicate, RuleError, compile_predicate, dig, parse

from . import assignment
from .selectors import live_conversion_goals

if TYPE_CHECKING:
    from activities.engine.context import RunContext

MAX_WINDOW = dt.timedelta(days=365)


def _refuse(message: str, errors: list[ConfigError]) -> InvalidConfiguration:
    return InvalidConfiguration(message, details=error_details(errors))


# --- exposure (the split processor) ----------------------------------------------------------


def activity_salt(*, activity_code: str, key: str) -> str:
    return f"activity:{activity_code}:{key}"


def _experiment_for_split(*, activity_id: int, activity_code: str, key: str) -> tuple[int, str]:
    row = (
        Experiment.objects.filter(activity_id=activity_id, key=key)
        .values_list("pk", "salt")
        .first()
    )
    if row is not None:
        return row
    Experiment.objects.bulk_create(
        [
            Experiment(
                kind=ExperimentKind.ACTIVITY,
                state=ExperimentState.TESTING,
                activity_id=activity_id,
                key=key,
                name=f"{activity_code} / {key}",
                salt=activity_salt(activity_code=activity_code, key=key),
            )
        ],
        ignore_conflicts=True,
    )
    return (
        Experiment.objects.filter(activity_id=activity_id, key=key).values_list("pk", "salt").get()
    )


def _insert_assignment(
    *,
    experiment_id: int,
    customer_id: int,
    variant: str,
    at: dt.datetime,
    event_id: Any,
    phase: str = AssignmentPhase.TEST,
) -> bool:
    """True when this call stored the assignment, False when one was already there."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Assignment._meta.db_table}
                    (experiment_id, customer_id, variant, phase, assigned_at, event_id)
                VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (experiment_id, customer_id) DO NOTHING
                RETURNING 1""",  # noqa: S608  (table name from the model, values bound)
            [experiment_id, customer_id, variant, phase, at, event_id],
        )
        return cursor.fetchone() is not None


def _keep_exposure(
    *,
    activity_id: int,
    activity_code: str,
    key: str,
    customer_id: int,
    variant: str,
    at: dt.datetime,
    event_id: Any,
) -> None:
    experiment_id, _salt = _experiment_for_split(
        activity_id=activity_id, activity_code=activity_code, key=key
    )
    _insert_assignment(
        experiment_id=experiment_id,
        customer_id=customer_id,
        variant=variant,
        at=at,
        event_id=event_id,
    )


def expose(*, ctx: RunContext, key: str, names: Sequence[str], ends: Sequence[int]) -> str:
    """The variant of the split `key` for this run's customer: the stored one, or a new
    placement by the hash against `ends` (assignment.boundaries of the current weights)."""
    activity_id, customer_id = ctx.activity.id, ctx.customer.pk
    experiment_id, salt = _experiment_for_split(
        activity_id=activity_id, activity_code=ctx.activity.code, key=key
    )
    stored = Assignment.objects.filter(experiment_id=experiment_id, customer_id=customer_id)
    variant = stored.values_list("variant", flat=True).first()
    if variant is not None:
        return variant
    variant = names[assignment.pick(assignment.position(salt, customer_id), ends)]
    if not _insert_assignment(
        experiment_id=experiment_id,
        customer_id=customer_id,
        variant=variant,
        at=ctx.now,
        event_id=ctx.event.pk,
    ):
        # A concurrent first run for this customer stored theirs first; it is the one.
        return stored.values_list("variant", flat=True).get()
    ctx.keep(
        partial(
            _keep_exposure,
            activity_id=activity_id,
            activity_code=ctx.activity.code,
            key=key,
            customer_id=customer_id,
            variant=variant,
            at=ctx.now,
            event_id=ctx.event.pk,
        )
    )
    return variant


# --- experiments of an activity ----------------------------------------------------------------


def split_keys(*, activity: Activity) -> list[str]:
    """The experiment keys of the split steps in the activity's template, in chain order."""
    keys: list[str] = []
    configs = ChainStep.objects.filter(
        chain__template_id=activity.template_id, processor="split"
    ).order_by("chain_id", "position", "pk")
    for config in configs.values_list("config", flat=True):
        key = config.get("key") if isinstance(config, dict) else None
        if isinstance(key, str) and key not in keys:
            keys.append(key)
    return keys


def activity_experiment(*, activity: Activity, key: str, name: str = "") -> Experiment:
    """The experiment of the activity's split `key` (created if no customer reached it yet), so
    goals can be set before the first exposure."""
    if key not in split_keys(activity=activity):
        message = _("The template of %(activity)s has no split step with the key %(key)s.") % {
            "activity": activity.code,
            "key": key,
        }
        raise _refuse(message, [ConfigError("key", message, "unknown_split")])
    experiment_id, _salt = _experiment_for_split(
        activity_id=activity.pk, activity_code=activity.code, key=key
    )
    experiment = Experiment.objects.get(pk=experiment_id)
    if name and experiment.name != name:
        experiment.name = name
        experiment.save(update_fields=["name"])
    return experiment


# --- goals -------------------------------------------------------------------------------------


def _check_payload_field(field: str) -> None:
    if not field.startswith("event.") or len(field) == len("event."):
        raise RuleError("", _("A goal's condition reads the event payload: event.<field>."))


def goal_predicate(condition: Any) -> Predicate | None:
    """The goal condition compiled to a predicate over `event.<payload path>`."""
    if not condition:
        return None
    return compile_predicate(parse(condition, check_field=_check_payload_field))


def goal_errors(*, channel: Any, window: Any, condition: Any) -> list[ConfigError]:
    errors: list[ConfigError] = []
    if not isinstance(channel, Channel) and not Channel.objects.filter(code=channel).exists():
        errors.append(
            ConfigError(
                "channel",
                _("There is no channel %(code)s.") % {"code": channel},
                "unknown_channel",
            )
        )
    if not isinstance(window, dt.timedelta) or not dt.timedelta(0) < window <= MAX_WINDOW:
        errors.append(
            ConfigError(
                "window",
                _("The window is a duration above zero and at most 365 days."),
                "invalid_window",
            )
        )
    if condition:
        try:
            parse(condition, check_field=_check_payload_field, path="condition")
        except RuleError as error:
            errors.append(ConfigError(error.path or "condition", error.message, error.code))
    return errors


def save_goal(
    *,
    experiment: Experiment,
    code: str,
    channel: Channel | str,
    window: dt.timedelta,
    condition: dict[str, Any] | None = None,
    name: str = "",
    position: int = 0,
    goal: ConversionGoal | None = None,
) -> ConversionGoal:
    """Create a goal, or change one that has no conversions yet (counted conversions keep the
    definition they were counted under: add a new goal instead)."""
    errors = goal_errors(channel=channel, window=window, condition=condition)
    taken = ConversionGoal.objects.filter(experiment=experiment, code=code)
    if goal is not None:
        taken = taken.exclude(pk=goal.pk)
    if taken.exists():
        errors.append(
            ConfigError(
                "code",
                _("The experiment already has a goal %(code)s.") % {"code": code},
                "duplicate_goal",
            )
        )
    if goal is not None and goal.conversions.exists():
        errors.append(
            ConfigError(
                "",
                _("This goal has counted conversions; add a new goal instead of changing it."),
                "goal_in_use",
            )
        )
    if errors:
        raise _refuse(_("The goal cannot be saved."), errors)
    if not isinstance(channel, Channel):
        channel = Channel.objects.get(code=channel)
    values = {
        "code": code,
        "name": name,
        "channel": channel,
        "window": window,
        "condition": condition or None,
        "position": position,
    }
    if goal is None:
        return ConversionGoal.objects.create(experiment=experiment, **values)
    for field, value in values.items():
        setattr(goal, field, value)
    goal.save()
    return goal


# --- conversions -------------------------------------------------------------------------------


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
    from notifications.models import Delivery, DeliveryStatus

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


def delete_goal(*, goal: ConversionGoal) -> None:
    """Only a goal nothing has converted on yet: counted results are evidence."""
    if goal.conversions.exists():
        message = _("This goal has counted conversions; it cannot be deleted.")
        raise _refuse(message, [ConfigError("", message, "goal_in_use")])
    goal.delete()

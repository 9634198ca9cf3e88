"""Exposures: the `split` processor placing a customer in a variant of an activity experiment.

The first run that reaches a split for a customer places them by the hash
(`engine.assignment`) and stores the placement (Assignment, unique per experiment and
customer); every later run reads it back, so weights changed later only place customers not
seen before. Two first runs at once for one customer both insert with ON CONFLICT DO NOTHING
and read back the row that won. A run that is rejected or fails after the split rolls back its
writes, but the exposure is kept (`ctx.keep`): the customer was exposed to the variant, and
leaving them out would bias the comparison towards variants that reject less.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import connection

from activities.engine import assignment
from activities.models import (
    Assignment,
    AssignmentPhase,
    Experiment,
    ExperimentKind,
    ExperimentState,
)

if TYPE_CHECKING:
    from activities.engine.context import RunContext


def activity_salt(*, activity_code: str, key: str) -> str:
    return f"activity:{activity_code}:{key}"


def experiment_for_split(*, activity_id: int, activity_code: str, key: str) -> tuple[int, str]:
    """(id, salt) of the experiment of the activity's split `key`, created on first use."""
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
    experiment_id, _salt = experiment_for_split(
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
    experiment_id, salt = experiment_for_split(
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

"""A broadcast's A/B test: variants to a test slice, then the winner to the rest.

Built on the notifications app's broadcasts, unchanged: each variant's test slice and the final
rest are ordinary one-off Broadcasts (planned, rate-limited, capped, paused and resumed like
any other), each over a static segment the experiment fills from its own assignments.

Nobody receives two variants. Every customer the experiment sends to is first given one
Assignment row (unique per experiment and customer) in SQL, `INSERT ... SELECT ... ON CONFLICT
DO NOTHING`; a broadcast's static segment is filled only from the assignments of its variant
and phase. The test slice is placed by the hash (a share of the segment on one hash, the
variant by weight on another, see `assignment`); the rollout takes every member of the segment
at rollout time who has no assignment yet, so a customer who joined the segment since the test
gets the winner, and a test customer never gets it. Within each broadcast the notifications
app's own unique (broadcast, customer) delivery holds.

Lifecycle: draft -> testing (start: the slice is assigned and the variant broadcasts start, in
a task) -> decided (the winner: automatically at `decide_at` by the first goal, or by an
operator) -> rolled out (the rest assigned and their broadcast started, in a task). Each step
is idempotent under the experiment's row lock; a one-off beat task at `decide_at` and a
catch-up task every minute drive the clock, as for activities and broadcasts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import structlog
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_celery_beat.models import ClockedSchedule, IntervalSchedule, PeriodicTask
from django_fsm import can_proceed

from activities import enqueue
from activities.engine import assignment
from activities.engine.errors import ConfigError, error_details
from activities.models import (
    Assignment,
    AssignmentPhase,
    Experiment,
    ExperimentKind,
    ExperimentState,
    ExperimentVariant,
)
from activities.models.experiment import variant_name_validator
from core.errors import InvalidConfiguration, TransitionNotAllowed
from notifications.models import Broadcast, BroadcastKind, BroadcastState, NotificationTemplate
from notifications.services.broadcasts import (
    cancel_broadcast,
    readiness_problems,
    start_broadcast,
)
from segments.models import Segment, SegmentMember
from segments.selectors import segment_customers

from . import selectors

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser

logger = structlog.get_logger(__name__)

CATCH_UP_NAME = "experiments: catch up"
CATCH_UP_SECONDS = 60
# A test whose launch task has not run after this long was lost; the catch-up launches it.
LAUNCH_GRACE = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class VariantSpec:
    name: str
    template: NotificationTemplate
    weight: Decimal | int | float = 1


def _refuse(message: str, errors: list[ConfigError]) -> InvalidConfiguration:
    return InvalidConfiguration(message, details=error_details(errors))


def _lock(experiment_id: int) -> Experiment:
    return (
        Experiment.objects.select_for_update(of=("self",))
        .select_related("segment")
        .get(pk=experiment_id, kind=ExperimentKind.BROADCAST)
    )


def _require(experiment: Experiment, transition: Any, by: User | None) -> None:
    if not can_proceed(transition):
        raise TransitionNotAllowed(
            _("Experiment %(name)s is %(state)s: it cannot be %(done)s now.")
            % {
                "name": experiment.name,
                "state": experiment.get_state_display(),
                "done": transition.__name__,
            }
        )
    if by is not None:
        meta = transition._django_fsm
        if not meta.has_transition_perm(experiment, experiment.state, by):
            raise PermissionDenied(_("You are not allowed to run experiments."))


# --- creating ----------------------------------------------------------------------------------


def _variant_errors(variants: Sequence[VariantSpec]) -> list[ConfigError]:
    errors: list[ConfigError] = []
    if len(variants) < 2:
        errors.append(
            ConfigError("variants", _("An A/B test needs at least two variants."), "too_few")
        )
    names: list[str] = []
    total = Decimal(0)
    for index, spec in enumerate(variants):
        path = f"variants[{index}]"
        try:
            variant_name_validator(spec.name)
        except Exception:  # the validator's ValidationError, reported with the path
            errors.append(
                ConfigError(
                    f"{path}.name", _("Use lower-case letters, digits, - and _."), "invalid"
                )
            )
        if spec.name in names:
            errors.append(
                ConfigError(
                    f"{path}.name",
                    _("Variant %(name)s is listed twice.") % {"name": spec.name},
                    "duplicate_variant",
                )
            )
        names.append(spec.name)
        try:
            weight = Decimal(str(spec.weight))
        except InvalidOperation:
            weight = Decimal(-1)
        if weight < 0 or weight >= 10**6:
            errors.append(
                ConfigError(
                    f"{path}.weight", _("A weight is a number from 0 to 999999."), "invalid"
                )
            )
        else:
            total += weight
        problems = readiness_problems(
            Broadcast(template=spec.template, kind=BroadcastKind.ONE_OFF, name="")
        )
        errors.extend(
            ConfigError(f"{path}.template", problem["message"], problem["code"])
            for problem in problems
            if problem["path"] == "template"
        )
    if variants and total <= 0:
        errors.append(
            ConfigError(
                "variants",
                _("At least one variant needs a weight above zero."),
                "invalid_weights",
            )
        )
    return errors


def create_broadcast_experiment(
    *,
    name: str,
    segment: Segment,
    variants: Sequence[VariantSpec],
    test_share: Decimal | float | str,
    decide_after: dt.timedelta | None,
    auto_pick: bool = True,
) -> Experiment:
    """A draft A/B test of a message to `segment`; add goals (services.save_goal), then start."""
    errors = _variant_errors(variants)
    try:
        share = Decimal(str(test_share))
    except InvalidOperation:
        share = Decimal(-1)
    if not Decimal("0.0001") <= share <= 1:
        errors.append(
            ConfigError(
                "test_share",
                _("The test share lies between 0.0001 and 1 (0.2 for 20%)."),
                "invalid",
            )
        )
    if decide_after is not None and decide_after <= dt.timedelta(0):
        errors.append(
            ConfigError("decide_after", _("Give a duration above zero."), "invalid_duration")
        )
    if auto_pick and decide_after is None:
        errors.append(
            ConfigError(
                "decide_after",
                _("Say when the winner is picked, or pick it yourself (turn auto-pick off)."),
                "required",
            )
        )
    if not name.strip():
        errors.append(ConfigError("name", _("Give the experiment a name."), "required"))
    if errors:
        raise _refuse(_("The experiment cannot be created."), errors)
    with transaction.atomic():
        experiment = Experiment.objects.create(
            kind=ExperimentKind.BROADCAST,
            name=name,
            segment=segment,
            test_share=share,
            decide_after=decide_after,
            auto_pick=auto_pick,
        )
        experiment.salt = f"broadcast:{experiment.pk}"
        experiment.save(update_fields=["salt"])
        ExperimentVariant.objects.bulk_create(
            ExperimentVariant(
                experiment=experiment,
                name=spec.name,
                position=position,
                weight=Decimal(str(spec.weight)),
                template=spec.template,
            )
            for position, spec in enumerate(variants)
        )
    return experiment


# --- the clock ---------------------------------------------------------------------------------


def decide_task_name(experiment_id: int) -> str:
    return f"experiment {experiment_id}: decide"


def _sync_schedule(experiment: Experiment) -> None:
    """The one-off beat task at `decide_at`, while an automatic pick is due (under the lock)."""
    name = decide_task_name(experiment.pk)
    periodic = PeriodicTask.objects.filter(name=name).first()
    due = (
        experiment.state == ExperimentState.TESTING
        and experiment.auto_pick
        and experiment.decide_at is not None
    )
    if not due:
        if periodic is not None:
            clocked_id = periodic.clocked_id
            periodic.delete()
            ClockedSchedule.objects.filter(pk=clocked_id, periodictask=None).delete()
        return
    if periodic is None:
        PeriodicTask.objects.create(
            name=name,
            task=enqueue.DECIDE_EXPERIMENT,
            clocked=ClockedSchedule.objects.create(clocked_time=experiment.decide_at),
            one_off=True,
            args=json.dumps([experiment.pk]),
            description=experiment.name[:200],
        )
    _ensure_catch_up()


def _ensure_catch_up() -> None:
    """The catch-up beat task: what a lost task or a beat outage left undone."""
    every, _created = IntervalSchedule.objects.get_or_create(
        every=CATCH_UP_SECONDS, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.get_or_create(
        name=CATCH_UP_NAME, defaults={"task": enqueue.CATCH_UP_EXPERIMENTS, "interval": every}
    )


# --- starting: the test slice --------------------------------------------------------------------


def start_broadcast_experiment(*, experiment_id: int, by: User | None = None) -> Experiment:
    """draft -> testing; the test slice is assigned and its broadcasts start in a task."""
    with transaction.atomic():
        experiment = _lock(experiment_id)
        _require(experiment, experiment.start, by)
        errors = _variant_errors(
            [
                VariantSpec(name=v.name, template=v.template, weight=v.weight)
                for v in experiment.variants.select_related("template")
            ]
        )
        if not experiment.goals.exists():
            errors.append(
                ConfigError(
                    "goals",
                    _("Add a conversion goal: the first one decides the winner."),
                    "required",
                )
            )
        if errors:
            raise _refuse(_("The experiment cannot start."), errors)
        experiment.start(now=timezone.now())
        experiment.save()
        _sync_schedule(experiment)
        _ensure_catch_up()
        enqueue.launch_test_on_commit(experiment_id=experiment.pk)
    return experiment


def _members_sql(experiment: Experiment, now: dt.datetime) -> tuple[str, list[Any]]:
    assert experiment.segment_id is not None
    members = segment_customers(segment_id=experiment.segment_id, now=now).values("pk")
    sql, params = members.query.sql_with_params()
    return sql, list(params)


def _assign_test_slice(experiment: Experiment, variants: list[ExperimentVariant]) -> int:
    """One statement: the segment's members in the test share, each with their variant."""
    ends = assignment.boundaries([variant.weight for variant in variants])
    assert experiment.started_at is not None and experiment.test_share is not None
    members, params = _members_sql(experiment, experiment.started_at)
    cases = " ".join("WHEN m.pos < %s THEN %s" for _variant in variants[:-1])
    case_params: list[Any] = []
    for end, variant in zip(ends[:-1], variants[:-1], strict=True):
        case_params += [end, variant.name]
    slice_salt = f"{experiment.salt}:slice"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Assignment._meta.db_table}
                    (experiment_id, customer_id, variant, phase, assigned_at, event_id)
                SELECT %s, m.id, CASE {cases} ELSE %s END, %s, %s, NULL
                FROM (SELECT c.id, {assignment.position_sql()} AS pos
                      FROM ({members}) AS c(id)
                      WHERE {assignment.position_sql()} < %s) AS m
                ORDER BY m.id
                ON CONFLICT (experiment_id, customer_id) DO NOTHING""",  # noqa: S608  (table names from the models, values bound)
            [
                experiment.pk,
                *case_params,
                variants[-1].name,
                AssignmentPhase.TEST,
                experiment.started_at,
                experiment.salt,
                *params,
                slice_salt,
                assignment.share_end(experiment.test_share),
            ],
        )
        return cursor.rowcount


def _audience(experiment: Experiment, *, code: str, name: str, variant: str, phase: str) -> Segment:
    """A static segment of exactly the customers assigned `variant` in `phase`."""
    segment, _created = Segment.objects.get_or_create(
        code=code,
        defaults={
            "name": name[:200],
            "kind": Segment.Kind.STATIC,
            "description": _("Filled by experiment %(name)s; do not edit.")
            % {"name": experiment.name},
        },
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {SegmentMember._meta.db_table} (segment_id, customer_id, added_at)
                SELECT %s, a.customer_id, %s FROM {Assignment._meta.db_table} a
                WHERE a.experiment_id = %s AND a.variant = %s AND a.phase = %s
                ORDER BY a.customer_id
                ON CONFLICT (segment_id, customer_id) DO NOTHING""",  # noqa: S608  (table names from the models, values bound)
            [segment.pk, timezone.now(), experiment.pk, variant, phase],
        )
        cursor.execute(
            f"SELECT count(*) FROM {SegmentMember._meta.db_table} WHERE segment_id = %s",  # noqa: S608  (table name from the model)
            [segment.pk],
        )
        segment.member_count = cursor.fetchone()[0]
    segment.counted_at = timezone.now()
    segment.save(update_fields=["member_count", "counted_at", "updated_at"])
    return segment


def _send(*, name: str, template_id: int, segment: Segment) -> Broadcast:
    broadcast = Broadcast.objects.create(name=name[:200], template_id=template_id, segment=segment)
    return start_broadcast(broadcast_id=broadcast.pk)


def launch_test(*, experiment_id: int) -> bool:
    """Assign the test slice and start one broadcast per variant. Idempotent: False when
    there is nothing (left) to launch."""
    with transaction.atomic():
        experiment = _lock(experiment_id)
        if experiment.state != ExperimentState.TESTING:
            return False
        variants = list(experiment.variants.select_for_update().order_by("position", "pk"))
        if all(variant.broadcast_id for variant in variants):
            return False
        assigned = _assign_test_slice(experiment, variants)
        for variant in variants:
            if variant.broadcast_id:
                continue
            audience = _audience(
                experiment,
                code=f"experiment-{experiment.pk}-{variant.name}",
                name=_("%(experiment)s: variant %(variant)s (test)")
                % {"experiment": experiment.name, "variant": variant.name},
                variant=variant.name,
                phase=AssignmentPhase.TEST,
            )
            variant.broadcast = _send(
                name=f"{experiment.name} · {variant.name} (test)",
                template_id=variant.template_id,
                segment=audience,
            )
            variant.save(update_fields=["broadcast"])
    logger.info("experiment_test_launched", experiment=experiment_id, assigned=assigned)
    return True


# --- deciding and rolling out ----------------------------------------------------------------


def pick_winner(*, experiment: Experiment) -> tuple[str, str]:
    """(winner, explanation) by the first goal: the best conversion rate; ties and a test
    without data keep the earlier variant (the first is the control)."""
    results = selectors.experiment_results(experiment=experiment)
    if not results.goals:
        return results.control, _("No goal to compare by: the control is kept.")
    goal = results.goals[0]
    rated = [variant for variant in goal.variants if variant.rate is not None]
    # max() keeps the first of equals: a tie goes to the earlier variant.
    best = max(rated, key=lambda variant: variant.rate or 0.0, default=None)
    if best is None:
        return results.control, _("No test message was sent: the control is kept.")
    summary = ", ".join(
        f"{v.name} {v.conversions}/{v.exposures}" + (f" (p={v.p_value:.4f})" if v.p_value else "")
        for v in goal.variants
    )
    return best.name, _("Best conversion rate on goal %(goal)s: %(summary)s.") % {
        "goal": goal.code,
        "summary": summary,
    }


def decide_experiment(
    *,
    experiment_id: int,
    winner: str | None = None,
    by: User | None = None,
    now: dt.datetime | None = None,
) -> Experiment:
    """testing -> decided, with the operator's `winner` or the one the first goal picks; the
    rollout to the rest follows in a task."""
    now = now or timezone.now()
    with transaction.atomic():
        experiment = _lock(experiment_id)
        _require(experiment, experiment.decide, by)
        names = list(experiment.variants.values_list("name", flat=True))
        if winner is None:
            winner, decision = pick_winner(experiment=experiment)
        elif winner not in names:
            message = _("Pick one of the variants: %(names)s.") % {"names": ", ".join(names)}
            raise _refuse(message, [ConfigError("winner", message, "unknown_variant")])
        else:
            who = getattr(by, "get_username", lambda: "")() if by is not None else ""
            decision = _("Picked by %(who)s.") % {"who": who or _("an operator")}
        experiment.decide(winner=winner, decision=decision, now=now)
        if by is not None and by.is_authenticated:
            experiment.decided_by = by  # type: ignore[assignment]
        experiment.save()
        _sync_schedule(experiment)
        enqueue.roll_out_on_commit(experiment_id=experiment.pk)
    logger.info("experiment_decided", experiment=experiment_id, winner=winner)
    return experiment


def decide_if_due(*, experiment_id: int, now: dt.datetime | None = None) -> bool:
    """Beat's automatic pick at `decide_at`: idempotent, and only when due."""
    now = now or timezone.now()
    with transaction.atomic():
        experiment = _lock(experiment_id)
        if (
            experiment.state != ExperimentState.TESTING
            or not experiment.auto_pick
            or experiment.decide_at is None
            or experiment.decide_at > now
        ):
            return False
        decide_experiment(experiment_id=experiment_id, now=now)
    return True


def roll_out(*, experiment_id: int) -> bool:
    """Send the winner to everyone in the segment who has no assignment yet. Idempotent."""
    with transaction.atomic():
        experiment = _lock(experiment_id)
        if experiment.state != ExperimentState.DECIDED or experiment.rolled_out_at is not None:
            return False
        now = timezone.now()
        members, params = _members_sql(experiment, now)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {Assignment._meta.db_table}
                        (experiment_id, customer_id, variant, phase, assigned_at, event_id)
                    SELECT %s, c.id, %s, %s, %s, NULL FROM ({members}) AS c(id)
                    ORDER BY c.id
                    ON CONFLICT (experiment_id, customer_id) DO NOTHING""",  # noqa: S608  (table names from the models, values bound)
                [experiment.pk, experiment.winner, AssignmentPhase.ROLLOUT, now, *params],
            )
            rest = cursor.rowcount
        if rest:
            winner = experiment.variants.get(name=experiment.winner)
            audience = _audience(
                experiment,
                code=f"experiment-{experiment.pk}-rollout",
                name=_("%(experiment)s: winner %(variant)s (rollout)")
                % {"experiment": experiment.name, "variant": winner.name},
                variant=winner.name,
                phase=AssignmentPhase.ROLLOUT,
            )
            experiment.rollout_broadcast = _send(
                name=f"{experiment.name} · {winner.name} (rollout)",
                template_id=winner.template_id,
                segment=audience,
            )
        experiment.rolled_out_at = now
        experiment.save(update_fields=["rollout_broadcast", "rolled_out_at"])
    logger.info("experiment_rolled_out", experiment=experiment_id, rest=rest)
    return True


def cancel_experiment(*, experiment_id: int, by: User | None = None) -> Experiment:
    """draft or testing -> cancelled; the test broadcasts still going out are cancelled."""
    with transaction.atomic():
        experiment = _lock(experiment_id)
        _require(experiment, experiment.cancel, by)
        experiment.cancel()
        experiment.save()
        _sync_schedule(experiment)
        for variant in experiment.variants.select_related("broadcast"):
            broadcast = variant.broadcast
            if broadcast is not None and broadcast.state in (
                BroadcastState.SCHEDULED,
                BroadcastState.SENDING,
                BroadcastState.PAUSED,
            ):
                cancel_broadcast(
                    broadcast_id=broadcast.pk,
                    reason=_("experiment %(name)s cancelled") % {"name": experiment.name},
                )
    return experiment


def catch_up(*, now: dt.datetime | None = None) -> dict[str, int]:
    """What a lost task or a beat outage left undone: launches, due picks, rollouts."""
    now = now or timezone.now()
    report = {"launched": 0, "decided": 0, "rolled_out": 0}
    testing = Experiment.objects.filter(
        kind=ExperimentKind.BROADCAST, state=ExperimentState.TESTING
    )
    for experiment_id in (
        testing.filter(started_at__lte=now - LAUNCH_GRACE, variants__broadcast__isnull=True)
        .values_list("pk", flat=True)
        .distinct()
    ):
        report["launched"] += launch_test(experiment_id=experiment_id)
    for experiment_id in testing.filter(auto_pick=True, decide_at__lte=now).values_list(
        "pk", flat=True
    ):
        report["decided"] += decide_if_due(experiment_id=experiment_id, now=now)
    for experiment_id in Experiment.objects.filter(
        kind=ExperimentKind.BROADCAST, state=ExperimentState.DECIDED, rolled_out_at__isnull=True
    ).values_list("pk", flat=True):
        report["rolled_out"] += roll_out(experiment_id=experiment_id)
    return report

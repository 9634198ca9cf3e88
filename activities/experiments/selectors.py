"""Experiment reads: results per variant and goal, for the admin and the API.

Counts are aggregated in SQL (one GROUP BY per experiment for exposures, one for conversions);
the statistics come from `stats`. Exposures of a split are its assignments; exposures of a
broadcast test are the test messages actually sent (a skipped or failed message exposed
nobody), counted from the deliveries of each variant's test broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count

from activities.models import (
    Activity,
    Assignment,
    AssignmentPhase,
    ChainStep,
    Conversion,
    Experiment,
    ExperimentKind,
)
from notifications.models import Delivery, DeliveryStatus

from . import stats


@dataclass(frozen=True)
class VariantResult:
    name: str
    weight: float | None
    is_control: bool
    exposures: int
    conversions: int
    rate: float | None
    rate_low: float | None
    rate_high: float | None
    # "control", "compared" or "not_enough_data"
    status: str
    uplift: float | None = None
    relative_uplift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class GoalResult:
    code: str
    name: str
    channel: str
    window_seconds: int
    condition: dict[str, Any] | None
    variants: list[VariantResult]

    @property
    def enough_data(self) -> bool:
        return all(variant.status != "not_enough_data" for variant in self.variants)


@dataclass(frozen=True)
class ExperimentResult:
    id: int
    name: str
    kind: str
    key: str
    state: str
    control: str
    winner: str
    exposures: dict[str, int]
    goals: list[GoalResult] = field(default_factory=list)


def split_config(*, activity: Activity, key: str) -> dict[str, Any] | None:
    """The configuration of the activity's split step `key` (the first, if several)."""
    for config in (
        ChainStep.objects.filter(chain__template_id=activity.template_id, processor="split")
        .order_by("chain_id", "position", "pk")
        .values_list("config", flat=True)
    ):
        if isinstance(config, dict) and config.get("key") == key:
            return config
    return None


def _variants(experiment: Experiment) -> tuple[list[tuple[str, float | None]], str]:
    """(name, weight) of each variant in order, and the control's name."""
    rows: list[tuple[str, float | None]]
    if experiment.kind == ExperimentKind.BROADCAST:
        rows = [(v.name, float(v.weight)) for v in experiment.variants.all()]
        return rows, rows[0][0] if rows else ""
    assert experiment.activity is not None
    config = split_config(activity=experiment.activity, key=experiment.key) or {}
    rows = [(v["name"], float(v["weight"])) for v in config.get("variants", [])]
    control = str(config.get("control") or (rows[0][0] if rows else ""))
    return rows, control


def exposure_counts(*, experiment: Experiment) -> dict[str, int]:
    if experiment.kind == ExperimentKind.ACTIVITY:
        rows = (
            Assignment.objects.filter(experiment=experiment, phase=AssignmentPhase.TEST)
            .values_list("variant")
            .annotate(n=Count("pk"))
        )
        return dict(rows)
    sent = (
        Delivery.objects.filter(
            broadcast__experiment_variant__experiment=experiment, status=DeliveryStatus.SENT
        )
        .values_list("broadcast__experiment_variant__name")
        .annotate(n=Count("pk"))
    )
    return dict(sent)


def experiment_results(*, experiment: Experiment) -> ExperimentResult:
    variants, control = _variants(experiment)
    exposures = exposure_counts(experiment=experiment)
    known = {name for name, _weight in variants}
    # Customers keep a variant removed from the configuration since; they still count.
    variants += [(name, None) for name in sorted(exposures) if name not in known]
    conversions: dict[tuple[int, str], int] = {
        (goal_id, variant): n
        for goal_id, variant, n in Conversion.objects.filter(experiment=experiment)
        .values_list("goal_id", "variant")
        .annotate(n=Count("pk"))
    }
    goals = []
    for goal in experiment.goals.select_related("channel"):
        control_n = exposures.get(control, 0)
        control_c = conversions.get((goal.pk, control), 0)
        rows = []
        for name, weight in variants:
            n = exposures.get(name, 0)
            c = conversions.get((goal.pk, name), 0)
            interval = stats.rate_interval(conversions=c, exposures=n)
            comparison = None
            if name != control:
                comparison = stats.compare(
                    conversions=c,
                    exposures=n,
                    control_conversions=control_c,
                    control_exposures=control_n,
                )
            rows.append(
                VariantResult(
                    name=name,
                    weight=weight,
                    is_control=name == control,
                    exposures=n,
                    conversions=c,
                    rate=c / n if n else None,
                    rate_low=interval[0] if interval else None,
                    rate_high=interval[1] if interval else None,
                    status="control"
                    if name == control
                    else ("compared" if comparison else "not_enough_data"),
                    uplift=comparison.uplift if comparison else None,
                    relative_uplift=comparison.relative_uplift if comparison else None,
                    ci_low=comparison.ci_low if comparison else None,
                    ci_high=comparison.ci_high if comparison else None,
                    p_value=comparison.p_value if comparison else None,
                )
            )
        goals.append(
            GoalResult(
                code=goal.code,
                name=goal.name,
                channel=goal.channel.code,
                window_seconds=int(goal.window.total_seconds()),
                condition=goal.condition,
                variants=rows,
            )
        )
    return ExperimentResult(
        id=experiment.pk,
        name=experiment.name,
        kind=experiment.kind,
        key=experiment.key,
        state=experiment.state,
        control=control,
        winner=experiment.winner,
        exposures={name: exposures.get(name, 0) for name, _weight in variants},
        goals=goals,
    )


def activity_experiments(*, activity: Activity) -> list[ExperimentResult]:
    experiments = (
        Experiment.objects.filter(activity=activity).select_related("activity").order_by("key")
    )
    return [experiment_results(experiment=experiment) for experiment in experiments]

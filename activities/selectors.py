"""Reads. Queries the API, the admin and the engine share."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Sum

from activities.models import (
    Activity,
    ActivityState,
    Benefit,
    ChainRun,
    ChainStep,
    ConversionGoal,
    Event,
    ExperimentState,
    Grant,
    GrantState,
    Participation,
    ParticipationCounter,
    Streak,
    WaitingRun,
    WaitState,
)
from core.db.compiled_queries import CompiledQuery
from core.rules import MISSING, dig
from segments.selectors import segment_contains

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _ProcessAnnotations(TypedDict):
    has_conversion_goals: bool
    customer_waits: bool


@dataclass(frozen=True)
class RunnableActivity:
    id: int
    template_id: int
    template_version: int
    config_version: int
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None

    def is_open(self, now: dt.datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and (
            self.ends_at is None or now < self.ends_at
        )


def _runnable_activities(channel_id: int, activity_id: int | None = None) -> QuerySet[Activity]:
    queryset = Activity.objects.filter(
        state=ActivityState.RUNNING, template__chains__channel_id=channel_id
    )
    if activity_id is not None:
        queryset = queryset.filter(pk=activity_id)
    return queryset.values_list(
        "pk", "template_id", "template__version", "config_version", "starts_at", "ends_at"
    ).order_by("pk")


_RUNNABLE_ON_CHANNEL = CompiledQuery(_runnable_activities, channel_id=int)
_RUNNABLE_ACTIVITY = CompiledQuery(_runnable_activities, channel_id=int, activity_id=int)


def runnable_activities(*, channel_id: int, activity_id: int | None) -> list[RunnableActivity]:
    """Running activities whose template binds a chain to the channel: read fresh every event,
    so a pause or an edit that has committed is seen by the very next event."""
    if activity_id is None:
        rows = _RUNNABLE_ON_CHANNEL.rows(channel_id=channel_id)
    else:
        rows = _RUNNABLE_ACTIVITY.rows(channel_id=channel_id, activity_id=activity_id)
    return [RunnableActivity(*row) for row in rows]


# An activity in these states may still run its chains.
LIVE_STATES = (ActivityState.SCHEDULED, ActivityState.RUNNING, ActivityState.PAUSED)


def live_activities_sending(*, template_code: str) -> list[str]:
    """Codes of the live activities with a `notify` step sending the notification template,
    in a chain of their own or in a variant of a split step."""
    in_a_variant = {
        "variants": [{"steps": [{"processor": "notify", "config": {"template": template_code}}]}]
    }
    sending_steps = ChainStep.objects.filter(
        Q(processor="notify", config__template=template_code)
        | Q(processor="split", config__contains=in_a_variant)
    )
    return list(
        Activity.objects.filter(
            state__in=LIVE_STATES,
            template__chains__in=sending_steps.values("chain_id"),
        )
        .values_list("code", flat=True)
        .distinct()
        .order_by("code")
    )


def customer_in_audience(*, segment_id: int, customer_id: int) -> bool:
    return segment_contains(segment_id=segment_id, customer_id=customer_id)


def _benefit_balances(activity_id: int, customer_id: int) -> QuerySet[Grant]:
    return (
        Grant.objects.filter(
            activity_id=activity_id, customer_id=customer_id, state=GrantState.ISSUED
        )
        .values_list("benefit__code")
        .annotate(total=Sum("remaining"))
    )


_BENEFIT_BALANCES = CompiledQuery(_benefit_balances, activity_id=int, customer_id=int)


def benefit_balances(*, activity_id: int, customer_id: int) -> dict[str, int]:
    """What the customer holds per benefit code; runs precompiled (chains read it often)."""
    rows = _BENEFIT_BALANCES.rows(activity_id=activity_id, customer_id=customer_id)
    return {code: total for code, total in rows}


def other_activity_value(*, activity_code: str, customer_id: int, path: list[str]) -> Any:
    activity_id = Activity.objects.filter(code=activity_code).values_list("pk", flat=True).first()
    if activity_id is None:
        return MISSING
    if len(path) == 1 and Benefit.objects.filter(activity_id=activity_id, code=path[0]).exists():
        return benefit_balances(activity_id=activity_id, customer_id=customer_id).get(path[0], 0)
    data = (
        Participation.objects.filter(activity_id=activity_id, customer_id=customer_id)
        .values_list("data", flat=True)
        .first()
    )
    return MISSING if data is None else dig(data, path)


def event_with_runs(*, event_id: Any, client_id: Any) -> Event | None:
    runs = ChainRun.objects.select_related("activity", "waiting__channel").prefetch_related(
        Prefetch("grants", queryset=Grant.objects.select_related("benefit"))
    )
    return (
        Event.objects.filter(pk=event_id, client_id=client_id)
        .prefetch_related(Prefetch("runs", queryset=runs))
        .first()
    )


def customer_grants(*, external_id: str, state: str | None = None) -> QuerySet[Grant]:
    queryset = Grant.objects.filter(customer__external_id=external_id).select_related(
        "benefit", "activity"
    )
    if state:
        queryset = queryset.filter(state=state)
    return queryset.order_by("-created_at", "-pk")


COUPON_STATES = ("usable", "redeemed", "expired")


def customer_coupons(
    *, external_id: str, state: str | None = None, now: dt.datetime
) -> QuerySet[Grant]:
    """A customer's coupons. `usable`: issued and not past its end; `expired` counts those
    past their end that the expiry sweep has not reached yet."""
    queryset = Grant.objects.filter(
        customer__external_id=external_id, code__isnull=False
    ).select_related("benefit", "activity")
    not_ended = Q(valid_until__isnull=True) | Q(valid_until__gt=now)
    if state == "usable":
        queryset = queryset.filter(not_ended, state=GrantState.ISSUED)
    elif state == "redeemed":
        queryset = queryset.filter(state=GrantState.REDEEMED)
    elif state == "expired":
        queryset = queryset.filter(
            Q(state=GrantState.EXPIRED) | Q(state=GrantState.ISSUED, valid_until__lte=now)
        )
    return queryset.order_by("-created_at", "-pk")


def running_activities() -> QuerySet[Activity]:
    return (
        Activity.objects.filter(state=ActivityState.RUNNING)
        .select_related("template")
        .prefetch_related("template__chains__channel", "benefits")
        .order_by("starts_at", "code")
    )


def participation_summary(*, activity: Activity, external_id: str) -> dict[str, Any]:
    participation = (
        Participation.objects.filter(activity=activity, customer__external_id=external_id)
        .select_related("customer")
        .first()
    )
    if participation is None:
        return {
            "activity": activity.code,
            "customer": external_id,
            "balances": {},
            "counters": {},
            "data": {},
        }
    balances = benefit_balances(activity_id=activity.pk, customer_id=participation.customer_id)
    counters: dict[str, dict[str, int]] = {}
    for key, period, count in ParticipationCounter.objects.filter(
        activity=activity, scope=f"c:{participation.customer_id}"
    ).values_list("key", "period", "count"):
        counters.setdefault(key, {})[period] = count
    return {
        "activity": activity.code,
        "customer": external_id,
        "balances": {
            code: balances.get(code, 0) for code in activity.benefits.values_list("code", flat=True)
        },
        "counters": counters,
        "data": participation.data,
    }


def live_conversion_goals(*, channel_id: Any) -> QuerySet[ConversionGoal]:
    """Goals an event on this channel may count for: their experiment started and not cancelled."""
    return ConversionGoal.objects.filter(channel_id=channel_id).exclude(
        experiment__state__in=[ExperimentState.DRAFT, ExperimentState.CANCELLED]
    )


def _event_to_process(event_id: uuid.UUID) -> QuerySet[Event]:
    return (
        Event.objects.select_related("customer")
        .annotate(
            has_conversion_goals=Exists(live_conversion_goals(channel_id=OuterRef("channel_id"))),
            customer_waits=Exists(
                WaitingRun.objects.filter(
                    customer_id=OuterRef("customer_id"), state=WaitState.WAITING
                )
            ),
        )
        .filter(pk=event_id)
        .order_by()
    )


_EVENT_TO_PROCESS = CompiledQuery(_event_to_process, event_id=uuid.UUID)


def event_to_process(*, event_id: Any) -> WithAnnotations[Event, _ProcessAnnotations] | None:
    """The event with its customer, whether any live conversion goal listens on its channel,
    and whether the customer has a journey waiting (so an event no experiment measures and no
    journey awaits costs no further query). Every event runs this, so it runs precompiled."""
    try:
        key = event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id))
    except ValueError:
        return None
    found = _EVENT_TO_PROCESS.instances(event_id=key)
    return found[0] if found else None  # type: ignore[return-value]


def event_state(*, event_id: Any) -> str | None:
    return Event.objects.filter(pk=event_id).values_list("state", flat=True).first()


def streak_of(*, activity_id: int, customer_id: int, key: str) -> Streak | None:
    return Streak.objects.filter(activity_id=activity_id, customer_id=customer_id, key=key).first()


def customer_progress_base(*, activity: Activity, customer_id: int) -> dict[str, Any]:
    """The part of a customer's progress every activity has: benefit balances."""
    balances = benefit_balances(activity_id=activity.pk, customer_id=customer_id)
    return {
        code: balances.get(code, 0) for code in activity.benefits.values_list("code", flat=True)
    }

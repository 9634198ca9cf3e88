"""Reads for the admin dashboard: the activity funnel and daily series of runs, grants, sends,
and one activity's figures (events, participants, grants by benefit, stock, rejections by
reason, per day in the activity's own zone).

Every number is one aggregate query; nothing iterates over runs or customers in Python.
The overview counts days in the operators' default timezone (GAMBIT_DEFAULT_TIMEZONE).

The funnel counts each run where it really stopped: a run the daily limit rejected passed the
rules but is counted as stopped by the limit, never as "passed".
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from activities.models import (
    Activity,
    ActivityState,
    Benefit,
    ChainRun,
    Grant,
    GrantState,
    RunOutcome,
)

# A run rejected by one of these gates did not pass the activity's rules.
RULE_PROCESSORS = ("rule_check",)
# A run rejected by one of these gates passed the rules and was stopped by a limit.
LIMIT_PROCESSORS = ("participation_limit",)
# Reasons the runner gives before any step runs; such runs did not pass the rules either.
AUDIENCE_REASONS = ("not_in_segment",)


@dataclass(frozen=True)
class FunnelRow:
    activity_id: int
    code: str
    name: str
    state: str
    events: int
    passed_rules: int
    passed_limits: int
    granted: int
    rejected: int
    failed: int


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.GAMBIT_DEFAULT_TIMEZONE)


def _rejected_at(processors: tuple[str, ...]) -> Q:
    """A rejected run whose trace has a rejected step of one of `processors`."""
    by_step = Q()
    for processor in processors:
        by_step |= Q(steps__contains=[{"processor": processor, "outcome": "rejected"}])
    return Q(outcome=RunOutcome.REJECTED) & by_step


def _rejected_by_rule() -> Q:
    """A run whose trace has a rejected rule step (or that the audience turned away)."""
    by_audience = Q(outcome=RunOutcome.REJECTED, reason__in=AUDIENCE_REASONS)
    return by_audience | _rejected_at(RULE_PROCESSORS)


def _stage_counts() -> dict[str, Count]:
    return {
        "events": Count("pk"),
        "rejected_by_rule": Count("pk", filter=_rejected_by_rule()),
        "rejected_by_limit": Count("pk", filter=_rejected_at(LIMIT_PROCESSORS)),
        "rejected": Count("pk", filter=Q(outcome=RunOutcome.REJECTED)),
        "failed": Count("pk", filter=Q(outcome=RunOutcome.FAILED)),
        "granted": Count("pk", filter=Q(outcome=RunOutcome.GRANTED)),
    }


def _stages(row: dict[str, Any]) -> dict[str, int]:
    passed_rules = row["events"] - row["rejected_by_rule"]
    return {
        "events": row["events"],
        "passed_rules": passed_rules,
        "passed_limits": passed_rules - row["rejected_by_limit"],
        "granted": row["granted"],
        "rejected": row["rejected"],
        "failed": row["failed"],
    }


def activity_funnel(*, since: dt.datetime | None = None, limit: int = 10) -> list[FunnelRow]:
    """Per activity (live ones first, then the busiest): events that reached it (runs other
    than skipped), runs that passed its rules, runs that granted something."""
    runs: QuerySet[ChainRun] = ChainRun.objects.exclude(outcome=RunOutcome.SKIPPED)
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    rows = (
        runs.values("activity_id", "activity__code", "activity__name", "activity__state")
        .annotate(**_stage_counts())
        .order_by("-events")[: limit * 3]
    )
    live = (ActivityState.RUNNING, ActivityState.PAUSED)
    funnel = [
        FunnelRow(
            activity_id=row["activity_id"],
            code=row["activity__code"],
            name=row["activity__name"],
            state=row["activity__state"],
            **_stages(row),
        )
        for row in rows
    ]
    funnel.sort(key=lambda row: (row.state not in live, -row.events))
    return funnel[:limit]


def _daily(
    queryset: QuerySet[Any],
    field: str,
    days: int,
    zone: zoneinfo.ZoneInfo | None = None,
    count: Any = None,
) -> list[dict[str, Any]]:
    """`count` (default: rows) per local day of `zone` (default: the operators'), oldest first."""
    zone = zone or _zone()
    today = timezone.now().astimezone(zone).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    counts = dict(
        queryset.filter(**{f"{field}__gte": start})
        .annotate(day=TruncDate(field, tzinfo=zone))
        .values("day")
        .annotate(n=count if count is not None else Count("pk"))
        .values_list("day", "n")
    )
    return [
        {
            "day": (first + dt.timedelta(days=i)).isoformat(),
            "count": counts.get(first + dt.timedelta(days=i), 0),
        }
        for i in range(days)
    ]


def daily_runs(*, days: int = 14) -> list[dict[str, Any]]:
    return _daily(ChainRun.objects.all(), "created_at", days)


def daily_grants(*, days: int = 14) -> list[dict[str, Any]]:
    return _daily(Grant.objects.all(), "created_at", days)


def daily_sends(*, days: int = 14) -> list[dict[str, Any]] | None:
    """Messages sent per day, or None when the notifications app has no deliveries table."""
    try:
        delivery = apps.get_model("notifications", "Delivery")
    except LookupError:
        return None
    field_names = {field.name for field in delivery._meta.get_fields()}
    if not {"status", "sent_at"} <= field_names:
        return None
    if delivery._meta.db_table not in connection.introspection.table_names():
        return None  # the app is there but not migrated yet
    return _daily(delivery.objects.filter(status="sent"), "sent_at", days)


def dashboard(*, days: int = 14) -> dict[str, Any]:
    return {
        "funnel": [row.__dict__ for row in activity_funnel()],
        "runs": daily_runs(days=days),
        "grants": daily_grants(days=days),
        "sends": daily_sends(days=days),
    }


def activity_stats(*, activity_id: int, days: int = 14) -> dict[str, Any]:
    """One activity's figures; days are the activity's own local days."""
    activity = Activity.objects.get(pk=activity_id)
    zone = zoneinfo.ZoneInfo(activity.timezone or settings.GAMBIT_DEFAULT_TIMEZONE)
    runs = ChainRun.objects.filter(activity_id=activity_id).exclude(outcome=RunOutcome.SKIPPED)
    grants = Grant.objects.filter(activity_id=activity_id)
    funnel = runs.aggregate(**_stage_counts())
    by_benefit = (
        grants.values("benefit__code", "benefit__name")
        .annotate(grants=Count("pk"), units=Sum("quantity"))
        .order_by("benefit__code")
    )
    stock = Benefit.objects.filter(activity_id=activity_id).order_by("code")
    reasons = (
        runs.filter(outcome=RunOutcome.REJECTED)
        .values("reason")
        .annotate(n=Count("pk"))
        .order_by("-n", "reason")
    )
    return {
        "timezone": str(zone),
        "funnel": _stages(funnel),
        "participants": runs.values("customer_id").distinct().count(),
        "events_per_day": _daily(runs, "created_at", days, zone),
        "participants_per_day": _daily(
            runs, "created_at", days, zone, Count("customer_id", distinct=True)
        ),
        "grants_per_day": _daily(grants, "created_at", days, zone),
        "grants_by_benefit": [
            {
                "code": row["benefit__code"],
                "name": row["benefit__name"] or row["benefit__code"],
                "grants": row["grants"],
                "units": row["units"] or 0,
            }
            for row in by_benefit
        ],
        "stock": [
            {
                "code": benefit.code,
                "name": benefit.name or benefit.code,
                "total": benefit.stock_total,
                "remaining": benefit.stock_remaining,
            }
            for benefit in stock
        ],
        "rejections": [{"reason": row["reason"], "count": row["n"]} for row in reasons],
        "coupons": coupon_counts(activity_id=activity_id),
    }


def coupon_counts(*, activity_id: int) -> dict[str, Any]:
    """Coupons of the activity by state (one aggregate) and the redemption rate: redeemed of
    those issued, whatever became of the rest."""
    counts = Grant.objects.filter(activity_id=activity_id, code__isnull=False).aggregate(
        issued=Count("pk"),
        usable=Count("pk", filter=Q(state=GrantState.ISSUED)),
        redeemed=Count("pk", filter=Q(state=GrantState.REDEEMED)),
        expired=Count("pk", filter=Q(state=GrantState.EXPIRED)),
        revoked=Count("pk", filter=Q(state=GrantState.REVOKED)),
    )
    issued = counts["issued"]
    counts["redemption_rate"] = round(counts["redeemed"] / issued, 4) if issued else None
    return counts

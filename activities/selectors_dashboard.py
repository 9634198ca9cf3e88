"""Reads for the admin dashboard: the activity funnel and daily series of runs, grants, sends.

Every number is one aggregate query; nothing iterates over runs or customers in Python.
Days are counted in the operators' default timezone (GAMBIT_DEFAULT_TIMEZONE).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from activities.models import ActivityState, ChainRun, Grant, RunOutcome

# A run rejected by one of these gates did not pass the activity's rules.
RULE_PROCESSORS = ("rule_check",)
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
    granted: int


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.GAMBIT_DEFAULT_TIMEZONE)


def _rejected_by_rule() -> Q:
    """A run whose trace has a rejected rule step (or that the audience turned away)."""
    by_audience = Q(outcome=RunOutcome.REJECTED, reason__in=AUDIENCE_REASONS)
    if connection.vendor == "postgresql":
        by_rule = Q()
        for processor in RULE_PROCESSORS:
            by_rule |= Q(steps__contains=[{"processor": processor, "outcome": "rejected"}])
        return by_audience | (Q(outcome=RunOutcome.REJECTED) & by_rule)
    # Other back ends have no JSON containment; the trace's text is matched instead.
    by_text = Q()
    for processor in RULE_PROCESSORS:
        by_text |= Q(steps__icontains=f'"processor": "{processor}", "outcome": "rejected"')
    return by_audience | (Q(outcome=RunOutcome.REJECTED) & by_text)


def activity_funnel(*, since: dt.datetime | None = None, limit: int = 10) -> list[FunnelRow]:
    """Per activity (live ones first, then the busiest): events that reached it (runs other
    than skipped), runs that passed its rules, runs that granted something."""
    runs: QuerySet[ChainRun] = ChainRun.objects.exclude(outcome=RunOutcome.SKIPPED)
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    rows = (
        runs.values("activity_id", "activity__code", "activity__name", "activity__state")
        .annotate(
            events=Count("pk"),
            rejected_by_rule=Count("pk", filter=_rejected_by_rule()),
            granted=Count("pk", filter=Q(outcome=RunOutcome.GRANTED)),
        )
        .order_by("-events")[: limit * 3]
    )
    live = (ActivityState.RUNNING, ActivityState.PAUSED)
    funnel = [
        FunnelRow(
            activity_id=row["activity_id"],
            code=row["activity__code"],
            name=row["activity__name"],
            state=row["activity__state"],
            events=row["events"],
            passed_rules=row["events"] - row["rejected_by_rule"],
            granted=row["granted"],
        )
        for row in rows
    ]
    funnel.sort(key=lambda row: (row.state not in live, -row.events))
    return funnel[:limit]


def _daily(queryset: QuerySet[Any], field: str, days: int) -> list[dict[str, Any]]:
    zone = _zone()
    today = timezone.now().astimezone(zone).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    counts = dict(
        queryset.filter(**{f"{field}__gte": start})
        .annotate(day=TruncDate(field, tzinfo=zone))
        .values("day")
        .annotate(n=Count("pk"))
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

"""Settlement: what an activity owes once it ends, handed out exactly once.

Beat runs `settle_gameplays` every minute: it expires the teams and help requests whose
lifetime ran out, and settles each ended activity: its forming teams and open requests expire,
and its leaderboard's prize tiers (the `leaderboard_score` step's `prizes`) go to the top
ranks. The `Settlement` row is locked first and written with the grants in one transaction,
so two beats, a retried task or a restarted worker settle nothing twice; each prize grant also
carries a unique idempotency key.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from activities.engine.cache import coupon_spec
from activities.models import (
    Activity,
    ActivityState,
    Benefit,
    ChainStep,
    Grant,
    HelpRequest,
    Settlement,
    Team,
)
from activities.selectors_subjects import leaderboard_top
from activities.services import coupon_codes
from activities.services.assists import expire_overdue_requests, expire_requests
from activities.services.teams import expire_overdue_teams, expire_teams
from core.db.rows import insert_or_lock
from core.metrics import record_grant

logger = structlog.get_logger(__name__)

SETTLED_STATES = (ActivityState.ENDED, ActivityState.ARCHIVED)
# Activities settled per sweep; the next sweep takes the rest.
SETTLE_BATCH = 50


def prize_tiers(*, template_id: int) -> list[dict[str, Any]]:
    """The prize tiers of the template's leaderboard step ([] without one)."""
    configs = ChainStep.objects.filter(
        chain__template_id=template_id, processor="leaderboard_score"
    ).values_list("config", flat=True)
    for config in configs:
        if config and config.get("prizes"):
            return list(config["prizes"])
    return []


def _tier(tiers: list[dict[str, Any]], rank: int) -> str | None:
    return next((t["benefit"] for t in tiers if rank <= t["up_to_rank"]), None)


def _award(
    *, activity: Activity, benefit: Benefit, customer_id: int, now: dt.datetime
) -> tuple[Grant | None, str]:
    """One prize, stock and budget taken by conditional UPDATE; (grant, "") or (None, why).

    A coupon prize gets its code and validity as any coupon grant does. The savepoint gives
    back the stock and budget taken when a pool coupon then finds no free code."""
    key = f"settle:{activity.pk}:{customer_id}"
    with transaction.atomic():
        if benefit.stock_total is not None and not Benefit.objects.filter(
            pk=benefit.pk, stock_remaining__gte=1
        ).update(stock_remaining=F("stock_remaining") - 1):
            return None, "out_of_stock"
        value = benefit.value
        if (
            activity.budget_total is not None
            and value
            and not Activity.objects.filter(pk=activity.pk, budget_remaining__gte=value).update(
                budget_remaining=F("budget_remaining") - value
            )
        ):
            transaction.set_rollback(True)
            return None, "budget_exhausted"
        code = valid_from = valid_until = None
        spec = coupon_spec(benefit)
        if spec is not None:
            code, valid_from, valid_until = coupon_codes.coupon_terms(
                spec=spec, benefit_id=benefit.pk, timezone_name=activity.timezone, now=now
            )
            if code is None:
                transaction.set_rollback(True)
                return None, "out_of_stock"
        grant = Grant.objects.create(
            benefit=benefit,
            activity=activity,
            customer_id=customer_id,
            idempotency_key=key,
            quantity=1,
            remaining=1,
            value=value,
            code=code,
            valid_from=valid_from,
            valid_until=valid_until,
        )
    record_grant(kind=benefit.kind, quantity=1)
    return grant, ""


def settle_activity(*, activity_id: int, now: dt.datetime | None = None) -> Settlement | None:
    """Settle one ended activity; None when it is not ended or was settled already."""
    now = now or timezone.now()
    with transaction.atomic():
        settlement = insert_or_lock(
            Settlement, unique=("activity_id",), activity_id=activity_id, result={}
        )
        if settlement.settled_at is not None:
            return None
        activity = Activity.objects.get(pk=activity_id)
        if activity.state not in SETTLED_STATES:
            return None
        teams = Team.objects.filter(activity_id=activity_id)
        requests = HelpRequest.objects.filter(activity_id=activity_id)
        result: dict[str, Any] = {"teams_expired": 0, "requests_expired": 0, "prizes": []}
        while expired := expire_teams(teams=teams, now=now, wait=True):
            result["teams_expired"] += expired
        while expired := expire_requests(requests=requests, now=now, wait=True):
            result["requests_expired"] += expired
        tiers = prize_tiers(template_id=activity.template_id)
        benefits = {b.code: b for b in Benefit.objects.filter(activity_id=activity_id)}
        last_rank = tiers[-1]["up_to_rank"] if tiers else 0
        for place in leaderboard_top(activity_id=activity_id, limit=last_rank):
            code = _tier(tiers, place.rank)
            benefit = benefits.get(code or "")
            entry: dict[str, Any] = {
                "rank": place.rank,
                "customer": place.customer,
                "score": place.score,
                "benefit": code,
            }
            if benefit is None:
                entry["skipped"] = "unknown_benefit"
            else:
                grant, why = _award(
                    activity=activity, benefit=benefit, customer_id=place.customer_id, now=now
                )
                if grant is None:
                    entry["skipped"] = why
                else:
                    entry["grant"] = grant.pk
            result["prizes"].append(entry)
        settlement.settled_at = now
        settlement.result = result
        settlement.save(update_fields=["settled_at", "result"])
    logger.info(
        "activity_settled",
        activity_id=activity_id,
        prizes=len(result["prizes"]),
        teams_expired=result["teams_expired"],
        requests_expired=result["requests_expired"],
    )
    return settlement


def settle_gameplays(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The beat sweep: expire what outlived its lifetime, settle what ended."""
    now = now or timezone.now()
    done = {
        "teams_expired": expire_overdue_teams(now=now),
        "requests_expired": expire_overdue_requests(now=now),
        "settled": 0,
    }
    due = (
        Activity.objects.filter(state__in=SETTLED_STATES)
        .filter(Q(settlement__isnull=True) | Q(settlement__settled_at__isnull=True))
        .order_by("pk")
        .values_list("pk", flat=True)[:SETTLE_BATCH]
    )
    for activity_id in due:
        if settle_activity(activity_id=activity_id, now=now) is not None:
            done["settled"] += 1
    return done

"""Reads of the gameplay subjects: leaderboards (top N and one customer's rank), teams, help
requests, subject counters. Shared by the storefront API, the progress read and the engine."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Sum
from psycopg import sql

from activities.models import (
    Activity,
    Assist,
    HelpRequest,
    HelpRequestState,
    ParticipationCounter,
    Score,
    ScoreBucket,
    SubjectCounter,
    SubjectMark,
    Team,
    TeamMember,
)
from activities.models.leaderboard import FANOUT_BITS, LEVELS, MAX_SCORE

FANOUT_MASK = (1 << FANOUT_BITS) - 1

# --- Leaderboard -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    rank: int
    customer: str
    score: int
    customer_id: int


def leaderboard_top(*, activity_id: int, limit: int) -> list[Ranked]:
    """The first `limit` places: the start of the ranking index, nothing more is read."""
    rows = (
        Score.objects.filter(activity_id=activity_id)
        .order_by("-score", "reached_at", "customer_id")
        .values_list("customer__external_id", "score", "customer_id")[:limit]
    )
    return [
        Ranked(rank=i, customer=c, score=s, customer_id=pk)
        for i, (c, s, pk) in enumerate(rows, start=1)
    ]


def _names(model: Any) -> dict[str, sql.Composable]:
    meta = model._meta
    names: dict[str, sql.Composable] = {"t": sql.Identifier(meta.db_table)}
    names.update({field.name: sql.Identifier(field.column) for field in meta.concrete_fields})
    return names


@functools.cache
def _rank_statement() -> str:
    # One round trip. Customers above: at each level of the count tree, the blocks above the
    # customer's under the same parent (a range of the covering index, at most 255 rows; the
    # top level has no parent), plus those who reached the same score earlier (a range of the
    # ranking index).
    bucket, score = _names(ScoreBucket), _names(Score)
    ranges = []
    for level in range(LEVELS):
        mine = sql.SQL("(me.s >> {shift})").format(shift=sql.Literal(FANOUT_BITS * level))
        last = (
            sql.SQL("{mine} | {mask}").format(mine=mine, mask=sql.Literal(FANOUT_MASK))
            if level < LEVELS - 1
            else sql.Literal(MAX_SCORE)
        )
        ranges.append(
            sql.SQL(
                "SELECT b.{holders} FROM {t} b, me WHERE b.{activity} = %(activity)s "
                "AND b.{level} = {number} AND b.{block} > {mine} AND b.{block} <= {last}"
            ).format(number=sql.Literal(level), mine=mine, last=last, **bucket)
        )
    return (
        sql.SQL(
            "WITH me AS (SELECT {score} AS s, {reached_at} AS r FROM {t} "
            "WHERE {activity} = %(activity)s AND {customer} = %(customer)s AND {events} > 0) "
            "SELECT me.s, 1 + COALESCE((SELECT SUM(a.{holders}) FROM ({above}) a), 0) "
            "+ (SELECT count(*) FROM {t} o WHERE o.{activity} = %(activity)s AND o.{score} = me.s "
            "AND (o.{reached_at}, o.{customer}) < (me.r, %(customer)s)) FROM me"
        )
        .format(holders=bucket["holders"], above=sql.SQL(" UNION ALL ").join(ranges), **score)
        .as_string(None)
    )


def rank_of(*, activity_id: int, customer_id: int) -> tuple[int, int] | None:
    """(rank, score) of the customer, or None when they have no score yet."""
    with connection.cursor() as cursor:
        cursor.execute(_rank_statement(), {"activity": activity_id, "customer": customer_id})
        row = cursor.fetchone()
    return None if row is None else (int(row[1]), row[0])


def naive_rank_of(*, activity_id: int, customer_id: int) -> tuple[int, int] | None:
    """The textbook rank, counting every customer above: the benchmark's baseline and the
    tests' oracle."""
    mine = Score.objects.filter(activity_id=activity_id, customer_id=customer_id).first()
    if mine is None or not mine.events:
        return None
    # Only committed scores are visible here, and each has counted an event: the counts read
    # the ranking index alone.
    scores = Score.objects.filter(activity_id=activity_id)
    above = (
        scores.filter(score__gt=mine.score).count()
        + scores.filter(score=mine.score, reached_at__lt=mine.reached_at).count()
        + scores.filter(
            score=mine.score, reached_at=mine.reached_at, customer_id__lt=customer_id
        ).count()
    )
    return above + 1, mine.score


def participants(*, activity_id: int) -> int:
    """Customers with a score: the top level's counts (at most 255 rows)."""
    total = ScoreBucket.objects.filter(activity_id=activity_id, level=LEVELS - 1).aggregate(
        total=Sum("holders")
    )["total"]
    return total or 0


# --- Subject counters --------------------------------------------------------------------------


def subject_count(*, activity_id: int, kind: str, subject: str, key: str) -> int:
    found = (
        SubjectCounter.objects.filter(activity_id=activity_id, kind=kind, subject=subject, key=key)
        .values_list("count", flat=True)
        .first()
    )
    return found or 0


def tallies(*, activity_id: int, kind: str, key: str, limit: int) -> list[tuple[str, int]]:
    """The leading subjects of one counter (live vote tallies), highest first."""
    return list(
        SubjectCounter.objects.filter(activity_id=activity_id, kind=kind, key=key)
        .order_by("-count", "subject")
        .values_list("subject", "count")[:limit]
    )


# --- Teams and help requests -----------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def team_view(team: Team) -> dict[str, Any]:
    members = list(
        TeamMember.objects.filter(team=team)
        .order_by("joined_at", "pk")
        .values_list("customer__external_id", flat=True)
    )
    return {
        "code": team.code,
        "state": team.state,
        "size": team.size,
        "members": team.members,
        "customers": members,
        "leader": members[0] if members else None,
        "expires_at": _iso(team.expires_at),
        "closed_at": _iso(team.closed_at),
    }


def team(*, activity_id: int, code: str) -> Team | None:
    return Team.objects.filter(activity_id=activity_id, code=code).first()


def customer_team(*, activity_id: int, customer_id: int) -> Team | None:
    """The customer's forming team, else the team they joined last."""
    memberships = TeamMember.objects.filter(activity_id=activity_id, customer_id=customer_id)
    current = memberships.filter(open=True).select_related("team").first()
    if current is None:
        current = memberships.select_related("team").order_by("-joined_at", "-pk").first()
    return current.team if current is not None else None


def request_view(request: HelpRequest) -> dict[str, Any]:
    helpers = list(
        Assist.objects.filter(request=request)
        .order_by("created_at", "pk")
        .values_list("helper__external_id", flat=True)
    )
    return {
        "code": request.code,
        "state": request.state,
        "initiator": request.initiator.external_id,
        "needed": request.needed,
        "helpers": request.helpers,
        "customers": helpers,
        "expires_at": _iso(request.expires_at),
        "closed_at": _iso(request.closed_at),
    }


def help_request(*, activity_id: int, code: str) -> HelpRequest | None:
    return (
        HelpRequest.objects.filter(activity_id=activity_id, code=code)
        .select_related("initiator")
        .first()
    )


def customer_request(*, activity_id: int, customer_id: int) -> HelpRequest | None:
    """The customer's open help request, else their latest one."""
    requests = HelpRequest.objects.filter(
        activity_id=activity_id, initiator_id=customer_id
    ).select_related("initiator")
    return (
        requests.filter(state=HelpRequestState.OPEN).first()
        or requests.order_by("-created_at", "-pk").first()
    )


def activity_ends_at(*, activity_id: int) -> dt.datetime | None:
    return Activity.objects.filter(pk=activity_id).values_list("ends_at", flat=True).first()


def marks_in_period(
    *, activity_id: int, kind: str, key: str, actor_id: int, period: str
) -> list[str]:
    """The subjects the customer counted for in the period (the candidates voted for today)."""
    return list(
        SubjectMark.objects.filter(
            activity_id=activity_id, kind=kind, key=key, actor_id=actor_id, period=period
        )
        .order_by("created_at", "pk")
        .values_list("subject", flat=True)
    )


def customer_count(*, activity_id: int, customer_id: int, key: str, period: str) -> int:
    """A participation counter of the customer (`participation_limit`'s count) in a period."""
    found = (
        ParticipationCounter.objects.filter(
            activity_id=activity_id, scope=f"c:{customer_id}", key=key, period=period
        )
        .values_list("count", flat=True)
        .first()
    )
    return found or 0

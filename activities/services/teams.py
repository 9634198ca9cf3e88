"""Teams (group-buy): open, join, complete, expire.

The size cap holds under any number of concurrent joins because a join moves `members` by one
conditional UPDATE (`... WHERE state = forming AND members < size AND expires_at > now`): the
row lock it takes queues the other joins, each of which then sees the new count. The member
row goes in first: its unique constraints refuse a customer already in this team or in another
forming team of the activity, and the run's rollback removes it when the UPDATE refuses.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.db import transaction
from django.db.models import F, QuerySet

from activities.engine.errors import Rejected
from activities.models import Team, TeamMember, TeamState
from core.db.rows import insert_unless_taken
from segments.services import ensure_customer_id

# No 0/o, 1/l/i: codes are read aloud and typed from screenshots.
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CODE_LENGTH = 8


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def expiry(*, now: dt.datetime, lifetime: dt.timedelta, ends_at: dt.datetime | None) -> dt.datetime:
    """A team or help request lives `lifetime`, and never past the activity's end."""
    due = now + lifetime
    return min(due, ends_at) if ends_at is not None else due


def open_team(*, activity_id: int, customer_id: int, size: int, expires_at: dt.datetime) -> Team:
    """A forming team led by the customer, its first member; Rejected `already_in_team` when
    the customer is in a forming team of this activity."""
    team = Team.objects.create(
        activity_id=activity_id,
        code=new_code(),
        leader_id=customer_id,
        size=size,
        members=1,
        expires_at=expires_at,
    )
    _add_member(team=team, customer_id=customer_id)
    return team


def _add_member(*, team: Team, customer_id: int) -> None:
    member = insert_unless_taken(
        TeamMember,
        team_id=team.pk,
        activity_id=team.activity_id,
        customer_id=customer_id,
        open=True,
    )
    if member is None:
        raise Rejected("already_in_team")


def join_team(*, activity_id: int, code: str, customer_id: int, now: dt.datetime) -> Team:
    """Add the customer to the team; the team completes when this join fills it.

    Rejected: `team_not_found`, `already_in_team`, `team_full`, `team_expired`.
    """
    team = Team.objects.filter(activity_id=activity_id, code=code).first()
    if team is None:
        raise Rejected("team_not_found")
    _add_member(team=team, customer_id=customer_id)
    joined = Team.objects.filter(
        pk=team.pk, state=TeamState.FORMING, members__lt=F("size"), expires_at__gt=now
    ).update(members=F("members") + 1)
    if not joined:
        team = Team.objects.get(pk=team.pk)
        if team.state == TeamState.EXPIRED or team.expires_at <= now:
            raise Rejected("team_expired")
        raise Rejected("team_full")
    # Our UPDATE holds the row's lock: this reads the count it left.
    team = Team.objects.select_for_update().get(pk=team.pk)
    if team.members == team.size:
        team.complete()
        _close(team=team, now=now)
    return team


def _close(*, team: Team, now: dt.datetime) -> None:
    team.closed_at = now
    team.save(update_fields=["state", "closed_at"])
    TeamMember.objects.filter(team=team, open=True).update(open=False)


def expire_teams(
    *, teams: QuerySet[Team], now: dt.datetime, limit: int = 500, wait: bool = False
) -> int:
    """Expire a batch of the forming teams among `teams`: their members are free to open or
    join another. Rows another transaction holds are skipped (the sweep comes back), unless
    `wait` (the settlement, which must close them all)."""
    with transaction.atomic():
        batch = list(
            teams.filter(state=TeamState.FORMING)
            .select_for_update(skip_locked=not wait)
            .order_by("pk")[:limit]
        )
        for team in batch:
            team.expire()
            _close(team=team, now=now)
    return len(batch)


def expire_overdue_teams(*, now: dt.datetime, limit: int = 500) -> int:
    return expire_teams(teams=Team.objects.filter(expires_at__lte=now), now=now, limit=limit)


def seed_team(
    *, activity_id: int, code: str, size: int, members: int, expires_at: dt.datetime
) -> Team:
    """A forming team with `members` stand-in customers (`<code>-member-<n>`): the dry run's
    "this team has 2 of 3 members" starting state."""
    leader, *others = [
        ensure_customer_id(external_id=f"{code}-member-{n}") for n in range(1, members + 1)
    ]
    team = Team.objects.create(
        activity_id=activity_id,
        code=code,
        leader_id=leader,
        size=size,
        members=members,
        expires_at=expires_at,
    )
    for customer_id in (leader, *others):
        _add_member(team=team, customer_id=customer_id)
    return team

"""`vote`: customers vote for candidates, a number of votes a day, never twice for the same
candidate on one day; tallies are live; each vote may earn a reward."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from activities import selectors_subjects
from activities.engine.errors import ConfigError
from activities.models import SubjectKind
from activities.services.counters import LimitPeriod, try_increment

from .base import DryRunState, Gameplay, Parameters, benefit_param, register

CAST = "vote.cast"
VOTES = "votes"
CANDIDATE_CODE = r"^[A-Za-z0-9_-]{1,64}$"
TALLY_SIZE = 10

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "votes_per_day": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 3,
            "title": gettext_lazy("Votes per customer per day"),
            "description": gettext_lazy(
                "Days are local to the activity's time zone; one candidate gets at most one "
                "of a customer's votes a day."
            ),
            "x-unit": gettext_lazy("votes"),
        },
        "candidates": {
            "type": "array",
            "maxItems": 10,
            "default": [{"code": "red"}, {"code": "blue"}, {"code": "green"}],
            "title": gettext_lazy("Candidates"),
            "description": gettext_lazy(
                "The codes the storefront sends as the candidate; leave empty to accept any."
            ),
            "items": {
                "type": "object",
                "properties": {
                    "code": {
                        "type": "string",
                        "pattern": CANDIDATE_CODE,
                        "title": gettext_lazy("Candidate code"),
                        "description": gettext_lazy("Letters, digits, - and _."),
                    }
                },
                "required": ["code"],
                "additionalProperties": False,
            },
        },
        "reward": {
            **benefit_param(
                title=gettext_lazy("Reward per vote"),
                description=gettext_lazy("Optional; given for every vote that counts."),
                optional=True,
            ),
            "default": "vote-points",
        },
    },
    "required": ["votes_per_day", "candidates"],
    "additionalProperties": False,
}


def _validate(params: Parameters) -> list[ConfigError]:
    errors = []
    seen: set[str] = set()
    for index, candidate in enumerate(params["candidates"]):
        if candidate["code"] in seen:
            errors.append(
                ConfigError(
                    f"candidates[{index}].code",
                    _("Candidate %(code)s is listed twice.") % {"code": candidate["code"]},
                    "duplicate_candidate",
                )
            )
        seen.add(candidate["code"])
    return errors


def _build(params: Parameters) -> list[dict[str, Any]]:
    count: dict[str, Any] = {
        "key": VOTES,
        "kind": SubjectKind.CANDIDATE.value,
        "field": "event.candidate",
        "once_per": "day",
    }
    if params["candidates"]:
        count["subjects"] = [candidate["code"] for candidate in params["candidates"]]
    steps: list[dict[str, Any]] = [
        {
            "processor": "participation_limit",
            "config": {"key": VOTES, "per": "day", "limit": params["votes_per_day"]},
        },
        {"processor": "count_subject", "config": count},
    ]
    if params.get("reward"):
        steps.append({"processor": "grant_benefit", "config": {"benefit": params["reward"]}})
    steps.append({"processor": "build_result", "config": {"fields": {"tally": "subject.votes"}}})
    return [{"channel": CAST, "lock": True, "steps": steps}]


def _today(activity: Any) -> str:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(activity.timezone)).date().isoformat()


def _progress(*, activity: Any, customer: Any) -> dict[str, Any]:
    per_day = activity.template.gameplay_parameters.get("votes_per_day", 0)
    today = _today(activity)
    used = voted = None
    if customer.pk:
        used = selectors_subjects.customer_count(
            activity_id=activity.pk, customer_id=customer.pk, key=VOTES, period=today
        )
        voted = selectors_subjects.marks_in_period(
            activity_id=activity.pk,
            kind=SubjectKind.CANDIDATE,
            key=VOTES,
            actor_id=customer.pk,
            period=today,
        )
    tally = selectors_subjects.tallies(
        activity_id=activity.pk, kind=SubjectKind.CANDIDATE, key=VOTES, limit=TALLY_SIZE
    )
    return {
        "votes": {
            "today": today,
            "per_day": per_day,
            "used_today": used or 0,
            "left_today": max(per_day - (used or 0), 0),
            "voted_today": voted or [],
            "tallies": [{"candidate": code, "votes": count} for code, count in tally],
        }
    }


def _start_state(*, activity: Any, customer: Any, state: dict[str, Any], now: Any) -> None:
    used = state.get("votes_used_today") or 0
    if used:
        try_increment(
            activity_id=activity.pk,
            customer_id=customer.pk,
            key=VOTES,
            per=LimitPeriod.DAY,
            limit=used,
            now=now,
            timezone_name=activity.timezone,
            amount=used,
        )


GAMEPLAY = register(
    Gameplay(
        code="vote",
        name=gettext_lazy("Vote"),
        description=gettext_lazy(
            "Customers vote for candidates a few times a day, never twice a day for the same "
            "one; tallies are live."
        ),
        preview=gettext_lazy("Vote for your favourite, 3 votes a day: see who leads now."),
        parameters=PARAMETERS,
        build=_build,
        validate=_validate,
        default_benefits=[
            {"code": "vote-points", "kind": "points", "name": gettext_lazy("Points per vote")}
        ],
        progress=_progress,
        dry_run_state=DryRunState(
            schema={
                "type": "object",
                "properties": {
                    "votes_used_today": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 100,
                        "title": gettext_lazy("Votes used today"),
                        "description": gettext_lazy("Votes the customer has cast today already."),
                        "x-unit": gettext_lazy("votes"),
                    }
                },
            },
            apply=_start_state,
        ),
    )
)

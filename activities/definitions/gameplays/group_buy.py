"""`group-buy` (组团): a customer opens a team, friends join with its code; when the team is
full within its lifetime every member gets the benefit, else it expires and its members may
open or join another."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext_lazy

from activities import selectors_subjects
from activities.services import teams

from .base import DryRunState, Gameplay, Parameters, benefit_param, register

OPEN = "team.open"
JOIN = "team.join"
COMPLETED = "team.completed"
DRY_RUN_TEAM = "dry-run"

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "team_size": {
            "type": "integer",
            "minimum": 2,
            "maximum": 50,
            "default": 3,
            "title": gettext_lazy("Team size"),
            "description": gettext_lazy(
                "Members a team needs, the customer who opens it included."
            ),
            "x-unit": gettext_lazy("customers"),
        },
        "lifetime_hours": {
            "type": "integer",
            "minimum": 1,
            "maximum": 720,
            "default": 24,
            "title": gettext_lazy("Time to fill a team"),
            "description": gettext_lazy(
                "A team not full by then expires (and always when the activity ends)."
            ),
            "x-unit": gettext_lazy("hours"),
        },
        "reward": {
            **benefit_param(
                title=gettext_lazy("Benefit for every member"),
                description=gettext_lazy("Each member gets it once the team is full."),
            ),
            "default": "group-price",
        },
    },
    "required": ["team_size", "lifetime_hours", "reward"],
    "additionalProperties": False,
}


def _build(params: Parameters) -> list[dict[str, Any]]:
    return [
        {
            "channel": OPEN,
            "lock": True,
            "steps": [
                {
                    "processor": "open_team",
                    "config": {
                        "size": params["team_size"],
                        "lifetime_minutes": params["lifetime_hours"] * 60,
                    },
                },
                {"processor": "build_result"},
            ],
        },
        {
            "channel": JOIN,
            "lock": True,
            "steps": [
                {"processor": "join_team", "config": {"field": "event.team"}},
                {
                    "processor": "emit_event",
                    "config": {
                        "channel": COMPLETED,
                        "to": {"field": "subject.customers"},
                        "payload": {"team": {"field": "subject.code"}},
                    },
                    "when": {"all": [{"field": "subject.state", "op": "eq", "value": "complete"}]},
                },
                {"processor": "build_result"},
            ],
        },
        {
            "channel": COMPLETED,
            "lock": True,
            "steps": [
                {"processor": "grant_benefit", "config": {"benefit": params["reward"]}},
                {"processor": "build_result"},
            ],
        },
    ]


def _progress(*, activity: Any, customer: Any) -> dict[str, Any]:
    team = (
        selectors_subjects.customer_team(activity_id=activity.pk, customer_id=customer.pk)
        if customer.pk
        else None
    )
    return {"team": selectors_subjects.team_view(team) if team is not None else None}


def _start_state(*, activity: Any, customer: Any, state: dict[str, Any], now: Any) -> None:
    members = state.get("team_members") or 0
    if members:
        params = activity.template.gameplay_parameters
        teams.seed_team(
            activity_id=activity.pk,
            code=DRY_RUN_TEAM,
            size=params["team_size"],
            members=min(members, params["team_size"] - 1),
            expires_at=now + dt.timedelta(hours=params["lifetime_hours"]),
        )


GAMEPLAY = register(
    Gameplay(
        code="group-buy",
        name=gettext_lazy("Group buy"),
        description=gettext_lazy(
            "A customer opens a team and shares its code; when the team fills in time, every "
            "member gets the benefit."
        ),
        preview=gettext_lazy(
            "Team up with 2 friends within 24 hours: everyone gets the group price."
        ),
        parameters=PARAMETERS,
        build=_build,
        default_benefits=[
            {
                "code": "group-price",
                "kind": "coupon",
                "name": gettext_lazy("Group price"),
                "value": "10.00",
            }
        ],
        progress=_progress,
        dry_run_state=DryRunState(
            schema={
                "type": "object",
                "properties": {
                    "team_members": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 49,
                        "title": gettext_lazy("Team members so far"),
                        "description": gettext_lazy(
                            'A forming team with code "dry-run" and this many members; fire '
                            'team.join with {"team": "dry-run"} to join it.'
                        ),
                        "x-unit": gettext_lazy("customers"),
                    }
                },
            },
            apply=_start_state,
        ),
    )
)

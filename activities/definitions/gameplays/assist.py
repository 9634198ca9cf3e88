"""`assist` (助力, invite friends to help): a customer opens a help request and shares its
code; each friend's help counts once; when enough friends helped within its lifetime the
initiator is rewarded (and, optionally, each helper)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext_lazy

from activities import selectors_subjects
from activities.services import assists

from .base import DryRunState, Gameplay, Parameters, benefit_param, register

START = "assist.start"
HELP = "assist.help"
FULFILLED = "assist.fulfilled"
DRY_RUN_REQUEST = "dry-run"

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "helpers_needed": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 3,
            "title": gettext_lazy("Friends needed"),
            "description": gettext_lazy("How many different friends must help."),
            "x-unit": gettext_lazy("friends"),
        },
        "lifetime_hours": {
            "type": "integer",
            "minimum": 1,
            "maximum": 720,
            "default": 24,
            "title": gettext_lazy("Time to collect help"),
            "description": gettext_lazy(
                "A request not complete by then expires (and always when the activity ends)."
            ),
            "x-unit": gettext_lazy("hours"),
        },
        "reward": {
            **benefit_param(
                title=gettext_lazy("Reward for the customer who asked"),
                description=gettext_lazy("Given once, when the last friend needed helps."),
            ),
            "default": "assist-gift",
        },
        "helper_reward": {
            **benefit_param(
                title=gettext_lazy("Reward for each friend who helps"),
                description=gettext_lazy("Optional; given for every help that counts."),
                optional=True,
            ),
            "default": "helper-points",
        },
        "new_customers_only": {
            "type": "boolean",
            "default": False,
            "title": gettext_lazy("New customers only"),
            "description": gettext_lazy(
                "Only friends first seen after the request opened may help."
            ),
        },
        "daily_help_limit": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "default": 0,
            "title": gettext_lazy("Helps per friend per day"),
            "description": gettext_lazy(
                "How many requests one friend may help a day; 0 for no limit."
            ),
            "x-unit": gettext_lazy("times"),
        },
    },
    "required": ["helpers_needed", "lifetime_hours", "reward", "new_customers_only"],
    "additionalProperties": False,
}


def _build(params: Parameters) -> list[dict[str, Any]]:
    helping: list[dict[str, Any]] = []
    if params.get("daily_help_limit"):
        helping.append(
            {
                "processor": "participation_limit",
                "config": {"key": "assist-help", "per": "day", "limit": params["daily_help_limit"]},
            }
        )
    helping += [
        {
            "processor": "assist",
            "config": {
                "field": "event.request",
                "new_customers_only": params["new_customers_only"],
            },
        },
        {
            "processor": "emit_event",
            "config": {
                "channel": FULFILLED,
                "to": {"field": "subject.initiator"},
                "payload": {"request": {"field": "subject.code"}},
            },
            "when": {"all": [{"field": "subject.state", "op": "eq", "value": "fulfilled"}]},
        },
    ]
    if params.get("helper_reward"):
        helping.append(
            {"processor": "grant_benefit", "config": {"benefit": params["helper_reward"]}}
        )
    return [
        {
            "channel": START,
            "lock": True,
            "steps": [
                {
                    "processor": "open_help_request",
                    "config": {
                        "helpers_needed": params["helpers_needed"],
                        "lifetime_minutes": params["lifetime_hours"] * 60,
                    },
                },
                {"processor": "build_result"},
            ],
        },
        {"channel": HELP, "lock": True, "steps": [*helping, {"processor": "build_result"}]},
        {
            "channel": FULFILLED,
            "lock": True,
            "steps": [
                {"processor": "grant_benefit", "config": {"benefit": params["reward"]}},
                {"processor": "build_result"},
            ],
        },
    ]


def _progress(*, activity: Any, customer: Any) -> dict[str, Any]:
    request = (
        selectors_subjects.customer_request(activity_id=activity.pk, customer_id=customer.pk)
        if customer.pk
        else None
    )
    return {"assist": selectors_subjects.request_view(request) if request is not None else None}


def _start_state(*, activity: Any, customer: Any, state: dict[str, Any], now: Any) -> None:
    helpers = state.get("helpers") or 0
    if helpers:
        params = activity.template.gameplay_parameters
        assists.seed_help_request(
            activity_id=activity.pk,
            code=DRY_RUN_REQUEST,
            needed=params["helpers_needed"],
            helpers=min(helpers, params["helpers_needed"] - 1),
            expires_at=now + dt.timedelta(hours=params["lifetime_hours"]),
        )


GAMEPLAY = register(
    Gameplay(
        code="assist",
        name=gettext_lazy("Ask friends to help"),
        description=gettext_lazy(
            "A customer shares a help request; when enough different friends help in time, the "
            "customer is rewarded."
        ),
        preview=gettext_lazy("Get 3 friends to tap “help” within 24 hours to unlock your gift."),
        parameters=PARAMETERS,
        build=_build,
        default_benefits=[
            {"code": "assist-gift", "kind": "prize", "name": gettext_lazy("Gift for asking")},
            {"code": "helper-points", "kind": "points", "name": gettext_lazy("Points for helping")},
        ],
        progress=_progress,
        dry_run_state=DryRunState(
            schema={
                "type": "object",
                "properties": {
                    "helpers": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 99,
                        "title": gettext_lazy("Friends who helped so far"),
                        "description": gettext_lazy(
                            'An open request with code "dry-run" and this many helpers; fire '
                            'assist.help with {"request": "dry-run"} to help it.'
                        ),
                        "x-unit": gettext_lazy("friends"),
                    }
                },
            },
            apply=_start_state,
        ),
    )
)

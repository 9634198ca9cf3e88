"""`checkin-streak`: one check-in per local day, rewards at milestone days of the streak."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from activities import selectors
from activities.engine.errors import ConfigError
from activities.services import streaks

from .base import DryRunState, Gameplay, Parameters, benefit_param, register

CHECKIN = "checkin.done"
MAKE_UP = "checkin.makeup"
STREAK_KEY = "checkin"

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cycle_days": {
            "type": "integer",
            "minimum": 2,
            "maximum": 366,
            "default": 7,
            "title": gettext_lazy("Streak length"),
            "description": gettext_lazy("Days in one cycle of the streak, e.g. 7 for a week."),
            "x-unit": gettext_lazy("days"),
        },
        "repeat": {
            "type": "boolean",
            "default": True,
            "title": gettext_lazy("Repeat each cycle"),
            "description": gettext_lazy(
                "After the last day a new cycle starts and its milestones reward again; "
                "otherwise each milestone rewards once per activity."
            ),
        },
        "milestones": {
            "type": "array",
            "minItems": 1,
            "maxItems": 10,
            "title": gettext_lazy("Milestone rewards"),
            "description": gettext_lazy("The day of the streak that earns a reward."),
            "default": [
                {"day": 3, "benefit": "points", "quantity": 10},
                {"day": 7, "benefit": "coupon-7", "quantity": 1},
            ],
            "items": {
                "type": "object",
                "properties": {
                    "day": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 366,
                        "title": gettext_lazy("Day"),
                        "x-unit": gettext_lazy("days"),
                    },
                    "benefit": benefit_param(title=gettext_lazy("Reward")),
                    "quantity": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1_000_000,
                        "default": 1,
                        "title": gettext_lazy("Quantity"),
                    },
                },
                "required": ["day", "benefit", "quantity"],
                "additionalProperties": False,
            },
        },
        "make_up": {
            "type": "boolean",
            "default": False,
            "title": gettext_lazy("Allow make-up"),
            "description": gettext_lazy(
                "A customer who missed only yesterday may fill it by spending the make-up "
                "benefit, before checking in today."
            ),
        },
        "make_up_cost": benefit_param(
            title=gettext_lazy("Make-up costs"),
            description=gettext_lazy("One unit of this benefit is spent per make-up."),
            optional=True,
        ),
    },
    "required": ["cycle_days", "repeat", "milestones", "make_up"],
    "additionalProperties": False,
}


def _validate(params: Parameters) -> list[ConfigError]:
    errors = []
    seen: set[int] = set()
    for index, milestone in enumerate(params["milestones"]):
        day = milestone["day"]
        if day > params["cycle_days"]:
            errors.append(
                ConfigError(
                    f"milestones[{index}].day",
                    _("Day %(day)d is past the streak length (%(length)d days).")
                    % {"day": day, "length": params["cycle_days"]},
                    "milestone_past_length",
                )
            )
        if day in seen:
            errors.append(
                ConfigError(
                    f"milestones[{index}].day",
                    _("Day %(day)d has a reward already.") % {"day": day},
                    "duplicate_milestone",
                )
            )
        seen.add(day)
    if params["make_up"] and not params.get("make_up_cost"):
        errors.append(
            ConfigError(
                "make_up_cost",
                _("Pick the benefit a make-up spends, or turn make-up off."),
                "make_up_cost_missing",
            )
        )
    return errors


def _streak_steps(params: Parameters, *, make_up: bool) -> list[dict[str, Any]]:
    config: dict[str, Any] = {
        "key": STREAK_KEY,
        "cycle_days": params["cycle_days"],
        "repeat": params["repeat"],
    }
    if make_up:
        config.update(make_up=True, cost={"benefit": params["make_up_cost"], "quantity": 1})
    steps: list[dict[str, Any]] = [{"processor": "checkin_streak", "config": config}]
    for milestone in sorted(params["milestones"], key=lambda m: m["day"]):
        if params["repeat"]:
            when: dict[str, Any] = {
                "all": [{"field": "vars.streak_cycle_day", "op": "eq", "value": milestone["day"]}]
            }
        else:
            # Once per activity: only a streak longer than any before reaches the day anew.
            when = {
                "all": [
                    {"field": "vars.streak_length", "op": "eq", "value": milestone["day"]},
                    {"field": "vars.streak_record", "op": "eq", "value": True},
                ]
            }
        steps.append(
            {
                "processor": "grant_benefit",
                "config": {"benefit": milestone["benefit"], "quantity": milestone["quantity"]},
                "when": when,
            }
        )
    steps.append(
        {
            "processor": "build_result",
            "config": {
                "fields": {"streak": "vars.streak_length", "cycle_day": "vars.streak_cycle_day"}
            },
        }
    )
    return steps


def _build(params: Parameters) -> list[dict[str, Any]]:
    chains = [{"channel": CHECKIN, "lock": True, "steps": _streak_steps(params, make_up=False)}]
    if params["make_up"]:
        chains.append(
            {"channel": MAKE_UP, "lock": True, "steps": _streak_steps(params, make_up=True)}
        )
    return chains


def _progress(*, activity: Any, customer: Any) -> dict[str, Any]:
    params = activity.template.gameplay_parameters
    today = streaks.local_day(
        instant=timezone.now(),
        customer_zone=customer.timezone or "",
        activity_zone=activity.timezone,
    )
    streak = selectors.streak_of(activity_id=activity.pk, customer_id=customer.pk, key=STREAK_KEY)
    length = best = days = 0
    checked_in_today = False
    if streak is not None:
        best, days = streak.best, streak.days
        checked_in_today = streak.last_day == today
        # A streak whose last day is before yesterday is broken; it shows as 0 until it restarts.
        if streak.last_day >= today - dt.timedelta(days=1):
            length = streak.length
    cycle = params.get("cycle_days", 7)
    return {
        "streak": {
            "length": length,
            "cycle_days": cycle,
            "days_this_cycle": streaks.cycle_day(
                length=length, cycle_days=cycle, repeat=params.get("repeat", True)
            ),
            "checked_in_today": checked_in_today,
            "today": today.isoformat(),
            "best": best,
            "days_total": days,
            "next_milestones": sorted(m["day"] for m in params.get("milestones", [])),
        }
    }


def _start_state(*, activity: Any, customer: Any, state: dict[str, Any], now: Any) -> None:
    length = state.get("streak_days") or 0
    if length:
        today = streaks.local_day(
            instant=now, customer_zone=customer.timezone or "", activity_zone=activity.timezone
        )
        streaks.set_streak(
            activity_id=activity.pk,
            customer_id=customer.pk,
            key=STREAK_KEY,
            length=length,
            last_day=today - dt.timedelta(days=1),
        )


GAMEPLAY = register(
    Gameplay(
        code="checkin-streak",
        name=gettext_lazy("Check-in streak"),
        description=gettext_lazy(
            "One check-in a day; an unbroken streak earns rewards on milestone days."
        ),
        preview=gettext_lazy("Check in every day: day 3 earns points, day 7 a coupon."),
        parameters=PARAMETERS,
        build=_build,
        validate=_validate,
        default_benefits=[
            {"code": "points", "kind": "points", "name": gettext_lazy("Check-in points")},
            {
                "code": "coupon-7",
                "kind": "coupon",
                "name": gettext_lazy("7-day coupon"),
                "value": "5.00",
            },
        ],
        progress=_progress,
        dry_run_state=DryRunState(
            schema={
                "type": "object",
                "properties": {
                    "streak_days": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 366,
                        "title": gettext_lazy("Streak so far"),
                        "description": gettext_lazy(
                            "Days in a row the customer has already checked in, up to yesterday."
                        ),
                        "x-unit": gettext_lazy("days"),
                    }
                },
            },
            apply=_start_state,
        ),
    )
)

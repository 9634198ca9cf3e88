"""`leaderboard` (打榜): a score per customer from one event's payload field (sum, highest or
number of events), ranked live by score and then by who reached it first; when the activity
ends the top ranks get their prizes, once (beat's settlement)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from activities import selectors_subjects
from activities.engine.errors import ConfigError
from activities.services.leaderboard import Aggregate, add_score

from .base import CHANNEL, DryRunState, Gameplay, Parameters, benefit_param, register

FIELD_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}$"

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "channel": {
            "type": "string",
            "x-kind": CHANNEL,
            "pattern": r"^[a-z0-9_]+(\.[a-z0-9_]+)*$",
            "default": "game.scored",
            "title": gettext_lazy("Scoring event"),
            "description": gettext_lazy("The event the storefront sends for each score."),
        },
        "aggregate": {
            "type": "string",
            "enum": list(Aggregate.values),
            "x-choices": {
                Aggregate.SUM.value: gettext_lazy("Add up the field"),
                Aggregate.MAX.value: gettext_lazy("Keep the highest value of the field"),
                Aggregate.COUNT.value: gettext_lazy("Count the events"),
            },
            "default": Aggregate.SUM.value,
            "title": gettext_lazy("Score"),
            "description": gettext_lazy("Equal scores rank by who reached the score first."),
        },
        "score_field": {
            "type": ["string", "null"],
            "pattern": FIELD_NAME,
            "default": "points",
            "title": gettext_lazy("Payload field"),
            "description": gettext_lazy(
                "The whole number in the event's payload, e.g. points; not needed to count events."
            ),
        },
        "prizes": {
            "type": "array",
            "maxItems": 10,
            "default": [
                {"up_to_rank": 1, "benefit": "gold"},
                {"up_to_rank": 3, "benefit": "silver"},
                {"up_to_rank": 10, "benefit": "bronze"},
            ],
            "title": gettext_lazy("Prizes when the activity ends"),
            "description": gettext_lazy(
                "Each row gives its prize to the ranks after the row above, up to its rank."
            ),
            "items": {
                "type": "object",
                "properties": {
                    "up_to_rank": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 10_000,
                        "title": gettext_lazy("Up to rank"),
                    },
                    "benefit": benefit_param(title=gettext_lazy("Prize")),
                },
                "required": ["up_to_rank", "benefit"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["channel", "aggregate", "prizes"],
    "additionalProperties": False,
}


def _validate(params: Parameters) -> list[ConfigError]:
    errors = []
    if params["aggregate"] != Aggregate.COUNT and not params.get("score_field"):
        errors.append(
            ConfigError(
                "score_field",
                _("Name the payload field that holds the score, or count events instead."),
                "score_field_missing",
            )
        )
    last = 0
    for index, tier in enumerate(params["prizes"]):
        if tier["up_to_rank"] <= last:
            errors.append(
                ConfigError(
                    f"prizes[{index}].up_to_rank",
                    _("Use a rank after %(rank)d, the row above's.") % {"rank": last},
                    "tiers_out_of_order",
                )
            )
        last = max(last, tier["up_to_rank"])
    return errors


def _build(params: Parameters) -> list[dict[str, Any]]:
    config: dict[str, Any] = {"aggregate": params["aggregate"]}
    if params["aggregate"] != Aggregate.COUNT:
        config["field"] = f"event.{params['score_field']}"
    if params["prizes"]:
        config["prizes"] = [
            {"up_to_rank": tier["up_to_rank"], "benefit": tier["benefit"]}
            for tier in params["prizes"]
        ]
    return [
        {
            "channel": params["channel"],
            "lock": True,
            "steps": [
                {"processor": "leaderboard_score", "config": config},
                {"processor": "build_result"},
            ],
        }
    ]


def _progress(*, activity: Any, customer: Any) -> dict[str, Any]:
    ranked = (
        selectors_subjects.rank_of(activity_id=activity.pk, customer_id=customer.pk)
        if customer.pk
        else None
    )
    return {
        "score": ranked[1] if ranked else None,
        "rank": ranked[0] if ranked else None,
        "participants": selectors_subjects.participants(activity_id=activity.pk),
    }


def _start_state(*, activity: Any, customer: Any, state: dict[str, Any], now: Any) -> None:
    if state.get("score") is not None:
        add_score(
            activity_id=activity.pk,
            customer_id=customer.pk,
            aggregate=Aggregate.SUM,
            value=state["score"],
            now=now,
        )


GAMEPLAY = register(
    Gameplay(
        code="leaderboard",
        name=gettext_lazy("Leaderboard"),
        description=gettext_lazy(
            "Customers climb a live ranking by score; when the activity ends the top ranks "
            "get their prizes automatically."
        ),
        preview=gettext_lazy("Score points to climb the board: the top 10 win prizes."),
        parameters=PARAMETERS,
        build=_build,
        validate=_validate,
        default_benefits=[
            {"code": "gold", "kind": "prize", "name": gettext_lazy("Gold prize"), "stock": 1},
            {"code": "silver", "kind": "prize", "name": gettext_lazy("Silver prize"), "stock": 2},
            {"code": "bronze", "kind": "prize", "name": gettext_lazy("Bronze prize"), "stock": 7},
        ],
        progress=_progress,
        dry_run_state=DryRunState(
            schema={
                "type": "object",
                "properties": {
                    "score": {
                        "type": "integer",
                        "minimum": 0,
                        "title": gettext_lazy("Score so far"),
                        "description": gettext_lazy("The customer's score before this event."),
                    }
                },
            },
            apply=_start_state,
        ),
    )
)

"""`quiz-lottery`: a passed quiz earns a lottery chance; a draw spends it (the first demo)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from activities.engine.errors import ConfigError

from .base import Gameplay, Parameters, benefit_param, register

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pass_score": {
            "type": "integer",
            "minimum": 0,
            "maximum": 1_000_000,
            "default": 60,
            "title": gettext_lazy("Pass score"),
            "description": gettext_lazy("A quiz scoring at least this earns a chance."),
        },
        "chances_per_day": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 1,
            "title": gettext_lazy("Chances per day"),
            "description": gettext_lazy("How many passed quizzes a day earn a chance."),
        },
        "chance": {
            **benefit_param(
                title=gettext_lazy("Chance"),
                description=gettext_lazy("The benefit a passed quiz gives and a draw spends."),
            ),
            "default": "chance",
        },
        "prizes": {
            "type": "array",
            "minItems": 1,
            "maxItems": 10,
            "title": gettext_lazy("Prizes"),
            "description": gettext_lazy("Each prize is drawn in proportion to its weight."),
            "default": [
                {"benefit": "big-prize", "weight": 1},
                {"benefit": "coupon-5", "weight": 9},
            ],
            "items": {
                "type": "object",
                "properties": {
                    "benefit": benefit_param(title=gettext_lazy("Prize")),
                    "weight": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1_000_000,
                        "default": 1,
                        "title": gettext_lazy("Weight"),
                    },
                },
                "required": ["benefit", "weight"],
                "additionalProperties": False,
            },
        },
        "fallback": benefit_param(
            title=gettext_lazy("Consolation"),
            description=gettext_lazy("Granted when the drawn prize is out of stock."),
            optional=True,
        ),
    },
    "required": ["pass_score", "chances_per_day", "chance", "prizes"],
    "additionalProperties": False,
}


def _validate(params: Parameters) -> list[ConfigError]:
    return [
        ConfigError(
            f"prizes[{index}].benefit",
            _("The chance cannot be a prize of the draw that spends it."),
            "chance_as_prize",
        )
        for index, prize in enumerate(params["prizes"])
        if prize["benefit"] == params["chance"]
    ]


def _build(params: Parameters) -> list[dict[str, Any]]:
    chance = params["chance"]
    return [
        {
            "channel": "quiz.completed",
            "lock": True,
            "steps": [
                {
                    "processor": "rule_check",
                    "config": {
                        "all": [
                            {"field": "event.score", "op": "gte", "value": params["pass_score"]}
                        ]
                    },
                },
                {
                    "processor": "participation_limit",
                    "config": {
                        "key": "quiz-chance",
                        "per": "day",
                        "limit": params["chances_per_day"],
                    },
                },
                {"processor": "grant_benefit", "config": {"benefit": chance, "quantity": 1}},
                {"processor": "build_result"},
            ],
        },
        {
            "channel": "lottery.draw",
            "lock": True,
            "steps": [
                {
                    "processor": "rule_check",
                    "config": {
                        "all": [{"field": f"participation.{chance}", "op": "gte", "value": 1}]
                    },
                },
                {
                    "processor": "lottery_draw",
                    "config": {
                        "cost": {"benefit": chance, "quantity": 1},
                        "prizes": [
                            {"benefit": prize["benefit"], "weight": prize["weight"]}
                            for prize in params["prizes"]
                        ],
                        "fallback": params.get("fallback"),
                    },
                },
                {"processor": "build_result"},
            ],
        },
    ]


GAMEPLAY = register(
    Gameplay(
        code="quiz-lottery",
        name=gettext_lazy("Quiz, then a lottery"),
        description=gettext_lazy("A passed quiz earns a lottery chance; a draw spends it."),
        preview=gettext_lazy("Score 60 in the quiz to win a draw: a big prize or a coupon."),
        parameters=PARAMETERS,
        build=_build,
        validate=_validate,
        default_benefits=[
            {"code": "chance", "kind": "chance", "name": gettext_lazy("Lottery chance")},
            {
                "code": "big-prize",
                "kind": "prize",
                "name": gettext_lazy("Big prize"),
                "stock": 10,
                "per_customer_limit": 1,
            },
            {
                "code": "coupon-5",
                "kind": "coupon",
                "name": gettext_lazy("5.00 coupon"),
                "stock": 1000,
                "per_customer_limit": 1,
                "value": "5.00",
            },
        ],
    )
)

from typing import Any

from django.utils.translation import gettext as _gettext
from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError, Rejected
from activities.engine.registry import register
from activities.selectors_subjects import rank_of
from activities.services.leaderboard import Aggregate, add_score

from .base import Processor
from .checks import benefit_schema, field_problems, field_schema

MAX_PRIZE_TIERS = 10
MAX_SCORE_STEP = 10**12


@register
class LeaderboardScore(Processor):
    """Score the event on the activity's leaderboard: the sum, the highest or the number of a
    payload field's values per customer, ranked by score, then by who reached it first.

    `prizes` are handed out once when the activity ends (the settlement, run by beat): tier by
    tier, ranks up to `up_to_rank` get that tier's benefit.
    """

    key = "leaderboard_score"
    label = _("Leaderboard score")
    description = _(
        "Adds the event to the customer's score: `sum` or `max` of the number in `field`, or "
        "`count` of events. The result carries the score and the rank. When the activity ends, "
        "each prize tier's benefit goes to the ranks up to its `up_to_rank`, once."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "aggregate": {"enum": list(Aggregate.values)},
            "field": field_schema,
            "prizes": {
                "type": "array",
                "maxItems": MAX_PRIZE_TIERS,
                "items": {
                    "type": "object",
                    "properties": {
                        "up_to_rank": {"type": "integer", "minimum": 1, "maximum": 10_000},
                        "benefit": benefit_schema,
                    },
                    "required": ["up_to_rank", "benefit"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["aggregate"],
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        errors = field_problems(config, "field")
        if config["aggregate"] != Aggregate.COUNT and "field" not in config:
            errors.append(
                ConfigError(
                    "field",
                    _gettext("Name the payload field to add up, e.g. event.points."),
                    "required",
                )
            )
        last = 0
        for index, tier in enumerate(config.get("prizes", [])):
            if tier["up_to_rank"] <= last:
                errors.append(
                    ConfigError(
                        f"prizes[{index}].up_to_rank",
                        _gettext("Each prize tier must reach rank %(rank)s or later.")
                        % {"rank": last + 1},
                        "tiers_out_of_order",
                    )
                )
            last = max(last, tier["up_to_rank"])
        return errors

    @classmethod
    def benefit_codes(cls, config: dict[str, Any]) -> set[str]:
        return {tier["benefit"] for tier in config.get("prizes", [])}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.aggregate = Aggregate(config["aggregate"])

    def process(self, ctx: RunContext) -> None:
        value = 1 if self.aggregate == Aggregate.COUNT else self._value(ctx)
        _, score = add_score(
            activity_id=ctx.activity.id,
            customer_id=ctx.customer.pk,
            aggregate=self.aggregate,
            value=value,
            now=ctx.now,
        )
        ranked = rank_of(activity_id=ctx.activity.id, customer_id=ctx.customer.pk)
        ctx.vars["score"] = score
        ctx.result["score"] = {"score": score, "rank": ranked[0] if ranked else None}

    def _value(self, ctx: RunContext) -> int:
        value = ctx.get(self.config["field"])
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Rejected("score_missing")
        if value != int(value) or abs(value) > MAX_SCORE_STEP:
            raise Rejected("invalid_score")
        return int(value)

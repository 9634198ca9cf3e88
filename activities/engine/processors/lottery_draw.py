import random
from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import Rejected
from activities.engine.registry import register
from activities.services.grants import issue_grant_if_available, spend

from .base import Processor
from .checks import benefit_schema, require_benefit

_system_random = random.SystemRandom()


@register
class LotteryDraw(Processor):
    """Spend the cost, draw one prize by weight, grant it if stock remains, else the fallback."""

    key = "lottery_draw"
    label = _("Lottery draw")
    description = _(
        "Weighted draw. A prize with no benefit is a 'no prize' slot. When the drawn prize is "
        "out of stock the fallback is granted (or nothing)."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "cost": {
                "type": "object",
                "properties": {
                    "benefit": benefit_schema,
                    "quantity": {"type": "integer", "minimum": 1},
                },
                "required": ["benefit"],
                "additionalProperties": False,
            },
            "prizes": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "properties": {
                        "benefit": {"anyOf": [benefit_schema, {"type": "null"}]},
                        "weight": {"type": "number", "exclusiveMinimum": 0},
                        "quantity": {"type": "integer", "minimum": 1},
                    },
                    "required": ["benefit", "weight"],
                    "additionalProperties": False,
                },
            },
            "fallback": {"anyOf": [benefit_schema, {"type": "null"}]},
        },
        "required": ["prizes"],
        "additionalProperties": False,
    }

    @classmethod
    def benefit_codes(cls, config: dict[str, Any]) -> set[str]:
        codes = {prize["benefit"] for prize in config["prizes"] if prize["benefit"]}
        if config.get("cost"):
            codes.add(config["cost"]["benefit"])
        if config.get("fallback"):
            codes.add(config["fallback"])
        return codes

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.prizes = config["prizes"]
        self.weights = [prize["weight"] for prize in self.prizes]

    def process(self, ctx: RunContext) -> None:
        cost = self.config.get("cost")
        if cost:
            benefit = require_benefit(ctx, cost["benefit"])
            if not spend(ctx=ctx, benefit=benefit, quantity=cost.get("quantity", 1)):
                raise Rejected(f"not_enough_{benefit.code}")
        prize = _system_random.choices(self.prizes, weights=self.weights, k=1)[0]
        ctx.vars["drawn"] = prize["benefit"]
        key = f"run:{ctx.run.pk}:step:{ctx.step_index}"
        for code in (prize["benefit"], self.config.get("fallback")):
            if not code:
                continue
            grant = issue_grant_if_available(
                ctx=ctx,
                benefit=require_benefit(ctx, code),
                quantity=prize.get("quantity", 1) if code == prize["benefit"] else 1,
                idempotency_key=key,
            )
            if grant is not None:
                ctx.grants.append(grant)
                return
        ctx.reason = "no_prize" if not prize["benefit"] else "out_of_stock"

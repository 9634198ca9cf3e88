from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.registry import register
from activities.services.grants import issue_grant

from .base import Processor
from .checks import benefit_schema, require_benefit


@register
class GrantBenefit(Processor):
    """Give the customer a benefit of this activity (coupon, points, prize, chance, cash)."""

    key = "grant_benefit"
    label = _("Grant a benefit")
    description = _("Issue a benefit; stock, budget and the per-customer limit are enforced.")
    config_schema = {
        "type": "object",
        "properties": {
            "benefit": benefit_schema,
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        },
        "required": ["benefit"],
        "additionalProperties": False,
    }

    @classmethod
    def benefit_codes(cls, config: dict[str, Any]) -> set[str]:
        return {config["benefit"]}

    def process(self, ctx: RunContext) -> None:
        benefit = require_benefit(ctx, self.config["benefit"])
        grant = issue_grant(
            ctx=ctx,
            benefit=benefit,
            quantity=self.config.get("quantity", 1),
            idempotency_key=f"run:{ctx.run.pk}:step:{ctx.step_index}",
        )
        ctx.grants.append(grant)

from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.registry import register

from .base import Processor
from .checks import benefit_schema


@register
class QueryAssets(Processor):
    """Read what the customer holds in this activity into `vars.assets` (and the result)."""

    key = "query_assets"
    label = _("Query assets")
    description = _("Unused quantity of each benefit the customer holds in this activity.")
    config_schema = {
        "type": "object",
        "properties": {"benefits": {"type": "array", "items": benefit_schema, "maxItems": 100}},
        "additionalProperties": False,
    }

    @classmethod
    def benefit_codes(cls, config: dict[str, Any]) -> set[str]:
        return set(config.get("benefits", []))

    def process(self, ctx: RunContext) -> None:
        balances = ctx.balances()
        codes = self.config.get("benefits") or sorted(ctx.activity.benefits)
        assets = {code: balances.get(code, 0) for code in codes}
        ctx.vars["assets"] = assets
        ctx.result["assets"] = assets

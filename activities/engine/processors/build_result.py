from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError
from activities.engine.fields import check_chain_field
from activities.engine.registry import register
from core.rules import MISSING, RuleError

from .base import Processor


@register
class BuildResult(Processor):
    """Shape what the storefront reads back: the grants, balances, and any chosen fields."""

    key = "build_result"
    label = _("Build the result")
    description = _(
        "The result always lists the grants and the balances left; `fields` adds named values "
        'from the context, e.g. {"score": "event.score"}.'
    )
    config_schema = {
        "type": "object",
        "properties": {
            "fields": {
                "type": "object",
                "propertyNames": {"pattern": "^[a-z_][a-z0-9_]{0,63}$"},
                "additionalProperties": {"type": "string"},
            },
            "message": {"type": "string", "maxLength": 500},
        },
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        errors = []
        for name, field in config.get("fields", {}).items():
            try:
                check_chain_field(field)
            except RuleError as error:
                errors.append(ConfigError(f"fields.{name}", error.message, error.code))
        return errors

    def process(self, ctx: RunContext) -> None:
        ctx.result["granted"] = [
            {"benefit": grant.benefit.code, "kind": grant.benefit.kind, "quantity": grant.quantity}
            for grant in ctx.grants
        ]
        ctx.holdings_changed()
        balances = ctx.balances()
        ctx.result["balances"] = {code: balances.get(code, 0) for code in ctx.activity.benefits}
        for name, field in self.config.get("fields", {}).items():
            value = ctx.get(field)
            ctx.result[name] = None if value is MISSING else value
        if "message" in self.config:
            ctx.result["message"] = self.config["message"]

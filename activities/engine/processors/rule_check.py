from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.chain_rules import parse_chain_rule
from activities.engine.context import RunContext
from activities.engine.errors import ConfigError
from activities.engine.registry import register
from core.rules import RuleError, compile_predicate, parse

from .base import Processor


@register
class RuleCheck(Processor):
    """Gate on a condition tree over the run's context."""

    key = "rule_check"
    label = _("Rule check")
    description = _("Continue only when the condition holds.")
    default_reason = "rule_not_met"
    config_schema = {
        "type": "object",
        "description": "A condition tree: all / any / not / {field, op, value}; "
        "may carry a 'reason' shown when it fails.",
        "minProperties": 1,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        tree = {k: v for k, v in config.items() if k != "reason"}
        if "reason" in config and not isinstance(config["reason"], str):
            return [ConfigError("reason", str(_("The reason must be text.")))]
        try:
            parse_chain_rule(tree)
        except RuleError as error:
            return [ConfigError(error.path, error.message, error.code)]
        return []

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._reason = config.get("reason", self.default_reason)
        self._predicate = compile_predicate(
            parse({k: v for k, v in config.items() if k != "reason"})
        )

    def validate(self, ctx: RunContext) -> bool:
        return self._predicate(ctx.get)

    def reason(self, ctx: RunContext) -> str:
        return self._reason

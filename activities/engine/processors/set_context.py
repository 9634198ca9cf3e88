from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError
from activities.engine.fields import check_chain_field
from activities.engine.registry import register
from activities.services.participations import remember
from core.rules import MISSING, RuleError

from .base import Processor

_value_schema = {
    "anyOf": [
        {"type": ["string", "number", "boolean", "null"]},
        {
            "type": "object",
            "properties": {"field": {"type": "string"}},
            "required": ["field"],
            "additionalProperties": False,
        },
    ]
}


@register
class SetContext(Processor):
    """Set values for later steps (`vars.<key>`), optionally kept on the participation."""

    key = "set_context"
    label = _("Set context values")
    description = _(
        "Each value is a literal or {field: ...} copied from the context. With persist, the "
        "values are kept as participation.<key> for later events."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "values": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": "^[a-z_][a-z0-9_]{0,63}$"},
                "additionalProperties": _value_schema,
            },
            "persist": {"type": "boolean"},
        },
        "required": ["values"],
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        errors = []
        for name, value in config["values"].items():
            if isinstance(value, dict):
                try:
                    check_chain_field(value["field"])
                except RuleError as error:
                    errors.append(ConfigError(f"values.{name}.field", error.message, error.code))
        return errors

    def process(self, ctx: RunContext) -> None:
        values = {}
        for name, spec in self.config["values"].items():
            value = ctx.get(spec["field"]) if isinstance(spec, dict) else spec
            values[name] = None if value is MISSING else value
        ctx.vars.update(values)
        if self.config.get("persist"):
            remember(participation=ctx.participation, values=values)

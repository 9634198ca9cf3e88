from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError
from activities.engine.fields import check_chain_field
from activities.engine.registry import register
from activities.models.channel import CHANNEL_CODE_PATTERN
from activities.services.events import emit_event
from core.rules import MISSING, RuleError

from .base import Processor


@register
class EmitEvent(Processor):
    """Fire an event on another channel for the same customer: gameplay A drives gameplay B."""

    key = "emit_event"
    label = _("Emit an event")
    description = _(
        "The new event runs after this run commits. Payload values are literals or "
        "{field: ...} copied from the context. Cycles are refused when the step is saved."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "channel": {"type": "string", "pattern": CHANNEL_CODE_PATTERN},
            "payload": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [
                        {"type": ["string", "number", "boolean", "null"]},
                        {
                            "type": "object",
                            "properties": {"field": {"type": "string"}},
                            "required": ["field"],
                            "additionalProperties": False,
                        },
                    ]
                },
            },
        },
        "required": ["channel"],
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        errors = []
        for name, value in config.get("payload", {}).items():
            if isinstance(value, dict):
                try:
                    check_chain_field(value["field"])
                except RuleError as error:
                    errors.append(ConfigError(f"payload.{name}.field", error.message, error.code))
        return errors

    @classmethod
    def emitted_channels(cls, config: dict[str, Any]) -> set[str]:
        return {config["channel"]}

    def process(self, ctx: RunContext) -> None:
        payload = {}
        for name, spec in self.config.get("payload", {}).items():
            value = ctx.get(spec["field"]) if isinstance(spec, dict) else spec
            payload[name] = None if value is MISSING else value
        emit_event(ctx=ctx, channel_code=self.config["channel"], payload=payload)

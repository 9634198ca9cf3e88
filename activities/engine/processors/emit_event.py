from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError, StepFailed
from activities.engine.fields import check_chain_field
from activities.engine.registry import register
from activities.models.channel import CHANNEL_CODE_PATTERN
from activities.services.events import emit_event
from core.rules import MISSING, RuleError
from segments.services import ensure_customer_id

from .base import Processor

# A team's members, a request's initiator: a credit reaches a handful of customers, not a segment.
MAX_RECIPIENTS = 100


@register
class EmitEvent(Processor):
    """Fire an event on another channel: gameplay A drives gameplay B.

    The event is the same customer's, unless `to` names others (a customer's external id or a
    list of them, e.g. `subject.customers` after a team completes): then each of them gets
    one, for this activity, and the chain on that channel rewards them (crediting another
    customer through the event bus, exactly once per run, step and customer).
    """

    key = "emit_event"
    label = _("Emit an event")
    description = _(
        "The new event runs after this run commits. Payload values are literals or "
        "{field: ...} copied from the context. Cycles are refused when the step is saved. "
        "With `to` (a field holding a customer id or a list of them) the event goes to those "
        "customers instead, for this activity only."
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
            "to": {
                "type": "object",
                "properties": {"field": {"type": "string"}},
                "required": ["field"],
                "additionalProperties": False,
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
        if "to" in config:
            try:
                check_chain_field(config["to"]["field"])
            except RuleError as error:
                errors.append(ConfigError("to.field", error.message, error.code))
        return errors

    @classmethod
    def emitted_channels(cls, config: dict[str, Any]) -> set[str]:
        return {config["channel"]}

    @classmethod
    def credited_channels(cls, config: dict[str, Any]) -> set[str]:
        return {config["channel"]} if "to" in config else set()

    def process(self, ctx: RunContext) -> None:
        payload = {}
        for name, spec in self.config.get("payload", {}).items():
            value = ctx.get(spec["field"]) if isinstance(spec, dict) else spec
            payload[name] = None if value is MISSING else value
        credited: list[int] = []
        if "to" in self.config:
            credited = self._recipients(ctx)
            if not credited:
                return
        emit_event(
            ctx=ctx,
            channel_code=self.config["channel"],
            payload=payload,
            credit_customer_ids=credited,
        )

    def _recipients(self, ctx: RunContext) -> list[int]:
        value = ctx.get(self.config["to"]["field"])
        if value is MISSING or value is None or value == "":
            raise StepFailed("no_recipient", f"{self.config['to']['field']} names no customer.")
        external_ids = value if isinstance(value, list) else [value]
        if len(external_ids) > MAX_RECIPIENTS:
            raise StepFailed("too_many_recipients", f"At most {MAX_RECIPIENTS} customers per step.")
        if not all(isinstance(v, str | int) and str(v) for v in external_ids):
            raise StepFailed("invalid_recipient", "Customer ids are text.")
        return [ensure_customer_id(external_id=str(v)) for v in dict.fromkeys(external_ids)]

from typing import Any

from django.utils.translation import gettext as _gettext
from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError, StepFailed
from activities.engine.registry import register
from activities.engine.waits import DURATION_PATTERN, Suspension, parse_duration
from core.rules import MISSING, Predicate, RuleError, compile_predicate, dig, parse

from .base import Processor

CHANNEL_PATTERN = "^[a-z0-9]+([._-][a-z0-9]+)*$"
SAME_SCHEMA = {
    "type": "array",
    "items": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"},
    "maxItems": 5,
    "uniqueItems": True,
}


def _check_event_field(field: str) -> None:
    if not field.startswith("event.") or field == "event.":
        raise RuleError(
            "",
            f"Name a field of the awaited event, such as event.amount (not {field!r}).",
            "unknown_field",
        )


@register
class WaitForEvent(Processor):
    """Hold the run until the customer's next event on a channel, or until the timeout.

    `same` lists payload keys the awaited event must share with the event that started the
    run (the same order); `when` is a condition on the awaited event's payload. Later steps
    read wait.outcome (event or timeout) and wait.event.<key>, so one chain holds both
    branches.
    """

    key = "wait_for_event"
    label = _("Wait for an event")
    description = _(
        "The run waits for the same customer's next event on the channel (optionally with the "
        "same values under the keys in same, and matching when), at most the timeout. Later "
        "steps read wait.outcome (event or timeout) and wait.event.<key>."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "channel": {"type": "string", "pattern": CHANNEL_PATTERN, "maxLength": 100},
            "timeout": {"type": "string", "pattern": DURATION_PATTERN},
            "same": SAME_SCHEMA,
            "when": {"type": "object"},
        },
        "required": ["channel", "timeout"],
        "additionalProperties": False,
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        when = config.get("when")
        self.condition: Predicate | None = compile_predicate(parse(when)) if when else None

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        errors = []
        try:
            parse_duration(config["timeout"])
        except ValueError:
            errors.append(ConfigError("timeout", _gettext("A wait may last at most 400 days.")))
        if "when" in config:
            try:
                parse(config["when"], check_field=_check_event_field, path="when")
            except RuleError as error:
                errors.append(ConfigError(error.path or "when", error.message, error.code))
        return errors

    def process(self, ctx: RunContext) -> None:
        match = {}
        for key in self.config.get("same", []):
            value = dig(ctx.event.payload or {}, [key])
            if value is MISSING:
                raise StepFailed("match_key_missing", f"The event has no {key!r} to wait on.")
            match[key] = value
        ctx.suspension = Suspension(
            due_at=ctx.now + parse_duration(self.config["timeout"]),
            channel_code=self.config["channel"],
            match=match,
        )

    def accepts(self, *, payload: dict[str, Any], match: dict[str, Any]) -> bool:
        """Whether an event with this payload is the one the run waits for."""
        if any(payload.get(key) != value for key, value in match.items()):
            return False
        if self.condition is None:
            return True
        parts_of = {"event": payload}

        def resolve(path: str) -> Any:
            root, _, rest = path.partition(".")
            return dig(parts_of.get(root, {}), rest.split(".")) if rest else MISSING

        return self.condition(resolve)

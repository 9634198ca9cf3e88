from typing import Any

from django.utils.translation import gettext as _gettext
from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError
from activities.engine.registry import register
from activities.engine.waits import DURATION_PATTERN, parse_duration
from activities.models import Participation
from activities.selectors_journeys import entered_before, still_waiting
from core.rules import MISSING, Predicate, RuleError, compile_predicate, dig, parse

from .base import Processor
from .wait_for_event import CHANNEL_PATTERN, SAME_SCHEMA

ALWAYS = "always"
ONCE = "once"
ONCE_PER_WINDOW = "once_per_window"
AFTER_PREVIOUS_ENDED = "after_previous_ended"

_REASONS = {
    ONCE: "already_entered",
    ONCE_PER_WINDOW: "entered_recently",
    AFTER_PREVIOUS_ENDED: "journey_in_progress",
}


def _check_event_field(field: str) -> None:
    if not field.startswith("event.") or field == "event.":
        raise RuleError(
            "",
            f"Name a field of the exit event, such as event.amount (not {field!r}).",
            "unknown_field",
        )


@register
class JourneyRules(Processor):
    """Who may enter this chain's journey, and which events end a waiting run early.

    Entry: always, once per customer ever, once per window (`window`), or again only after
    the customer's previous run of this chain ended. Checked under the participation lock,
    so two events at once cannot both enter. Exits: the customer's event on one of the
    channels (matching `when`) cancels a run waiting in this chain (the customer converted).
    """

    key = "journey_rules"
    label = _("Journey entry and exit rules")
    description = _(
        "Put it first. entry: always, once, once_per_window (with window, e.g. 30d) or "
        "after_previous_ended. exit_on: events that end a waiting run of this chain early."
    )
    default_reason = "already_entered"
    config_schema = {
        "type": "object",
        "properties": {
            "entry": {
                "enum": [ALWAYS, ONCE, ONCE_PER_WINDOW, AFTER_PREVIOUS_ENDED],
                "default": ALWAYS,
            },
            "window": {"type": "string", "pattern": DURATION_PATTERN},
            "exit_on": {
                "type": "array",
                "maxItems": 10,
                "items": {
                    "type": "object",
                    "properties": {
                        "channel": {"type": "string", "pattern": CHANNEL_PATTERN, "maxLength": 100},
                        "same": SAME_SCHEMA,
                        "when": {"type": "object"},
                    },
                    "required": ["channel"],
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.exits: list[tuple[str, tuple[str, ...], Predicate | None]] = [
            (
                rule["channel"],
                tuple(rule.get("same", [])),
                compile_predicate(parse(rule["when"])) if rule.get("when") else None,
            )
            for rule in config.get("exit_on", [])
        ]

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        errors = []
        entry = config.get("entry", ALWAYS)
        if entry == ONCE_PER_WINDOW and "window" not in config:
            errors.append(
                ConfigError("window", _gettext("Once per window needs a window, such as 30d."))
            )
        if "window" in config:
            try:
                parse_duration(config["window"])
            except ValueError:
                errors.append(
                    ConfigError("window", _gettext("A window may last at most 400 days."))
                )
        for index, rule in enumerate(config.get("exit_on", [])):
            if "when" in rule:
                try:
                    parse(rule["when"], check_field=_check_event_field, path="when")
                except RuleError as error:
                    errors.append(
                        ConfigError(
                            f"exit_on[{index}].{error.path or 'when'}", error.message, error.code
                        )
                    )
        return errors

    @property
    def exit_channels(self) -> frozenset[str]:
        return frozenset(code for code, _, _ in self.exits)

    def exits_on(
        self, *, channel_code: str, payload: dict[str, Any], origin: dict[str, Any]
    ) -> bool:
        """Whether an event (`payload`) ends a run that `origin`'s event started."""

        def resolve(path: str) -> Any:
            root, _, rest = path.partition(".")
            return dig(payload, rest.split(".")) if root == "event" and rest else MISSING

        return any(
            code == channel_code
            and all(key in origin and payload.get(key) == origin[key] for key in same)
            and (when is None or when(resolve))
            for code, same, when in self.exits
        )

    def validate(self, ctx: RunContext) -> bool:
        entry = self.config.get("entry", ALWAYS)
        if entry == ALWAYS:
            return True
        # Serialise the customer's entries even when the chain itself does not lock.
        Participation.objects.select_for_update().filter(pk=ctx.participation.pk).exists()
        scope = {
            "activity_id": ctx.activity.id,
            "customer_id": ctx.customer.pk,
            "channel_id": ctx.event.channel_id,
        }
        if entry == AFTER_PREVIOUS_ENDED:
            return not still_waiting(**scope)
        since = None
        if entry == ONCE_PER_WINDOW:
            since = ctx.now - parse_duration(self.config["window"])
        return not entered_before(**scope, run_id=ctx.run.pk, since=since)

    def reason(self, ctx: RunContext) -> str:
        return _REASONS.get(self.config.get("entry", ALWAYS), self.default_reason)

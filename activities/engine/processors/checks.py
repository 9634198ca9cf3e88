"""Pieces of configuration that several processors share."""

from typing import Any

from activities.engine.cache import BenefitConfig
from activities.engine.context import RunContext
from activities.engine.errors import ConfigError, Rejected, StepFailed
from activities.engine.fields import check_chain_field
from core.rules import RuleError

benefit_schema = {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": 100}


def require_benefit(ctx: RunContext, code: str) -> BenefitConfig:
    # Scheduling refuses an activity that lacks a benefit its template names; this guards a
    # benefit deleted while the activity runs.
    benefit = ctx.activity.benefits.get(code)
    if benefit is None:
        raise StepFailed(
            "unknown_benefit", f"Activity {ctx.activity.code} has no benefit {code!r}."
        )
    return benefit


# A team or help request lives at least a minute and at most 30 days.
lifetime_schema = {"type": "integer", "minimum": 1, "maximum": 30 * 24 * 60}
field_schema = {"type": "string", "minLength": 1, "maxLength": 200}


def text_value(ctx: RunContext, field: str, *, missing: str) -> str:
    """The context value at `field` as a code or id (text or a whole number), or Rejected with
    `missing` when the event does not carry one."""
    value = ctx.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise Rejected(missing)
    text = str(value)
    if len(text) > 128:
        raise Rejected(missing)
    return text


def field_problems(config: dict[str, Any], *names: str) -> list[ConfigError]:
    """Each named config value that is a context field, checked as a rule's field would be."""
    errors = []
    for name in names:
        if name in config:
            try:
                check_chain_field(config[name])
            except RuleError as error:
                errors.append(ConfigError(name, error.message, error.code))
    return errors

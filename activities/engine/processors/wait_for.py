from typing import Any

from django.utils.translation import gettext as _gettext
from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError
from activities.engine.registry import register
from activities.engine.waits import DURATION_PATTERN, Suspension, parse_duration

from .base import Processor


@register
class WaitFor(Processor):
    """Hold the run for a duration; the steps after it run when the time is up."""

    key = "wait_for"
    label = _("Wait for a while")
    description = _(
        "The run waits this long (30s, 30m, 12h, 2d), then goes on with the next step. "
        "Later steps read wait.outcome = elapsed."
    )
    config_schema = {
        "type": "object",
        "properties": {"duration": {"type": "string", "pattern": DURATION_PATTERN}},
        "required": ["duration"],
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        try:
            parse_duration(config["duration"])
        except ValueError:
            return [ConfigError("duration", _gettext("A wait may last at most 400 days."))]
        return []

    def process(self, ctx: RunContext) -> None:
        ctx.suspension = Suspension(due_at=ctx.now + parse_duration(self.config["duration"]))

import datetime as dt

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.registry import register
from activities.engine.waits import TIME_PATTERN, Suspension, next_local_time, zone_or

from .base import Processor


@register
class WaitUntil(Processor):
    """Hold the run until the next time the clock reads HH:MM, in the customer's timezone
    (falling back to the activity's) or in the activity's."""

    key = "wait_until"
    label = _("Wait until a local time")
    description = _(
        "The run waits until the next HH:MM in the customer's timezone (or the activity's, "
        "when the customer has none or zone is activity), then goes on. Later steps read "
        "wait.outcome = elapsed."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "time": {"type": "string", "pattern": TIME_PATTERN},
            "zone": {"enum": ["customer", "activity"], "default": "customer"},
        },
        "required": ["time"],
        "additionalProperties": False,
    }

    def process(self, ctx: RunContext) -> None:
        customer_zone = ctx.customer.timezone if self.config.get("zone") != "activity" else ""
        zone = zone_or(customer_zone or "", ctx.activity.timezone)
        due_at = next_local_time(
            now=ctx.now, at=dt.time.fromisoformat(self.config["time"]), zone=zone
        )
        ctx.suspension = Suspension(due_at=due_at)

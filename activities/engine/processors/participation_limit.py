from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.registry import register
from activities.services.counters import LimitPeriod, try_increment

from .base import Processor


@register
class ParticipationLimit(Processor):
    """Count this participation and refuse it once the limit is reached."""

    key = "participation_limit"
    label = _("Participation limit")
    description = _(
        "Allow at most `limit` runs per day (in the activity's timezone), per customer over "
        "the whole activity, or for all customers of the activity together."
    )
    default_reason = "limit_reached"
    config_schema = {
        "type": "object",
        "properties": {
            "key": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
            "per": {"enum": [period.value for period in LimitPeriod]},
            "limit": {"type": "integer", "minimum": 1},
            "reason": {"type": "string", "maxLength": 100},
        },
        "required": ["key", "per", "limit"],
        "additionalProperties": False,
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.counter_key = config["key"]
        self.per = LimitPeriod(config["per"])
        self.limit = config["limit"]

    def validate(self, ctx: RunContext) -> bool:
        return try_increment(
            activity_id=ctx.activity.id,
            customer_id=ctx.customer.pk,
            key=self.counter_key,
            per=self.per,
            limit=self.limit,
            now=ctx.now,
            timezone_name=ctx.activity.timezone,
        )

    def reason(self, ctx: RunContext) -> str:
        return self.config.get("reason", f"{self.per.value}_limit_reached")

from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import Rejected
from activities.engine.registry import register
from activities.services import streaks
from activities.services.grants import spend

from .base import Processor
from .checks import benefit_schema, require_benefit


@register
class CheckinStreak(Processor):
    """Count today's check-in on the customer's streak of consecutive local days."""

    key = "checkin_streak"
    label = _("Check-in streak")
    description = _(
        "Counts one check-in per local day (the customer's timezone, else the activity's); the "
        "streak grows on consecutive days and starts again after a missed day. With make-up, "
        "fills yesterday instead, spending `cost`. Sets vars.streak_length, "
        "vars.streak_cycle_day (1..cycle_days), vars.streak_record and vars.streak_best."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "key": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
            "cycle_days": {"type": "integer", "minimum": 1, "maximum": 366},
            "repeat": {"type": "boolean"},
            "make_up": {"type": "boolean"},
            "cost": {
                "type": "object",
                "properties": {
                    "benefit": benefit_schema,
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
                "required": ["benefit"],
                "additionalProperties": False,
            },
        },
        "required": ["key", "cycle_days"],
        "additionalProperties": False,
    }

    @classmethod
    def benefit_codes(cls, config: dict[str, Any]) -> set[str]:
        return {config["cost"]["benefit"]} if config.get("cost") else set()

    def validate(self, ctx: RunContext) -> bool:
        day = streaks.local_day(
            instant=ctx.now,
            customer_zone=ctx.customer.timezone or "",
            activity_zone=ctx.activity.timezone,
        )
        write = streaks.make_up if self.config.get("make_up") else streaks.check_in
        state = write(
            activity_id=ctx.activity.id,
            customer_id=ctx.customer.pk,
            key=self.config["key"],
            day=day,
        )
        if state is None:
            return False
        ctx.vars.update(
            streak_length=state.length,
            streak_best=state.best,
            streak_record=state.record,
            streak_cycle_day=streaks.cycle_day(
                length=state.length,
                cycle_days=self.config["cycle_days"],
                repeat=self.config.get("repeat", False),
            ),
        )
        return True

    def process(self, ctx: RunContext) -> None:
        cost = self.config.get("cost")
        if cost:
            benefit = require_benefit(ctx, cost["benefit"])
            if not spend(ctx=ctx, benefit=benefit, quantity=cost.get("quantity", 1)):
                raise Rejected(f"not_enough_{benefit.code}")

    def reason(self, ctx: RunContext) -> str:
        return "nothing_to_make_up" if self.config.get("make_up") else "already_checked_in"

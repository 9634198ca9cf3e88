from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext, Subject
from activities.engine.errors import ConfigError
from activities.engine.registry import register
from activities.models import SubjectKind
from activities.selectors_subjects import team_view
from activities.services.teams import join_team

from .base import Processor
from .checks import field_problems, field_schema, text_value


@register
class JoinTeam(Processor):
    """Join the team the event names; the join that fills it completes it.

    However many customers join at once, a team never holds more than its size: the others are
    refused with `team_full` (or `team_expired`, `team_not_found`, `already_in_team`). After a
    completing join `subject.state` is `complete` and `subject.customers` lists every member,
    ready for an `emit_event` step that credits them.
    """

    key = "join_team"
    label = _("Join a team")
    description = _(
        "Joins the team whose code is in `field` (default event.team). The result carries the "
        "team; subject.state becomes complete when this join fills it, and subject.customers "
        "lists the members."
    )
    config_schema = {
        "type": "object",
        "properties": {"field": field_schema},
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        return field_problems(config, "field")

    def process(self, ctx: RunContext) -> None:
        code = text_value(ctx, self.config.get("field", "event.team"), missing="team_missing")
        team = join_team(
            activity_id=ctx.activity.id, code=code, customer_id=ctx.customer.pk, now=ctx.now
        )
        view = team_view(team)
        ctx.subject = Subject(kind=SubjectKind.TEAM, id=team.code, values=view)
        ctx.result["team"] = view

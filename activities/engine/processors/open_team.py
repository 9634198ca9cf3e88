import datetime as dt

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext, Subject
from activities.engine.registry import register
from activities.models import SubjectKind
from activities.selectors_subjects import activity_ends_at, team_view
from activities.services.teams import expiry, open_team

from .base import Processor
from .checks import lifetime_schema

MAX_TEAM_SIZE = 100


@register
class OpenTeam(Processor):
    """Open a team (group-buy) led by the customer: its code and expiry go in the result.

    A customer is in at most one forming team per activity (a unique constraint): opening
    while in one is refused with `already_in_team`.
    """

    key = "open_team"
    label = _("Open a team")
    description = _(
        "The customer opens a team of `size` members (themselves included) that must fill "
        "within `lifetime_minutes` (and before the activity ends), else it expires. The result "
        "carries the team: code, state, size, members, expiry; later steps read subject.*."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "size": {"type": "integer", "minimum": 2, "maximum": MAX_TEAM_SIZE},
            "lifetime_minutes": lifetime_schema,
        },
        "required": ["size", "lifetime_minutes"],
        "additionalProperties": False,
    }

    def process(self, ctx: RunContext) -> None:
        team = open_team(
            activity_id=ctx.activity.id,
            customer_id=ctx.customer.pk,
            size=self.config["size"],
            expires_at=expiry(
                now=ctx.now,
                lifetime=dt.timedelta(minutes=self.config["lifetime_minutes"]),
                ends_at=activity_ends_at(activity_id=ctx.activity.id),
            ),
        )
        view = team_view(team)
        ctx.subject = Subject(kind=SubjectKind.TEAM, id=team.code, values=view)
        ctx.result["team"] = view

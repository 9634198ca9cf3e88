import datetime as dt

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext, Subject
from activities.engine.registry import register
from activities.models import SubjectKind
from activities.selectors_subjects import activity_ends_at, request_view
from activities.services.assists import open_help_request
from activities.services.teams import expiry

from .base import Processor
from .checks import lifetime_schema

MAX_HELPERS = 1000


@register
class OpenHelpRequest(Processor):
    """Open a help request (assist, 助力) for the customer: its code goes in the result, for
    the storefront to share with friends. A customer has one open request per activity; asking
    again returns it."""

    key = "open_help_request"
    label = _("Open a help request")
    description = _(
        "The customer asks `helpers_needed` friends for help within `lifetime_minutes` (and "
        "before the activity ends). The result carries the request: code, state, helpers, "
        "expiry. An open request is returned as it is."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "helpers_needed": {"type": "integer", "minimum": 1, "maximum": MAX_HELPERS},
            "lifetime_minutes": lifetime_schema,
        },
        "required": ["helpers_needed", "lifetime_minutes"],
        "additionalProperties": False,
    }

    def process(self, ctx: RunContext) -> None:
        request, created = open_help_request(
            activity_id=ctx.activity.id,
            customer_id=ctx.customer.pk,
            needed=self.config["helpers_needed"],
            expires_at=expiry(
                now=ctx.now,
                lifetime=dt.timedelta(minutes=self.config["lifetime_minutes"]),
                ends_at=activity_ends_at(activity_id=ctx.activity.id),
            ),
            now=ctx.now,
        )
        request.initiator = ctx.customer
        view = request_view(request)
        ctx.subject = Subject(kind=SubjectKind.REQUEST, id=request.code, values=view)
        ctx.result["request"] = {**view, "created": created}

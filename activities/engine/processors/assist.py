from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext, Subject
from activities.engine.errors import ConfigError
from activities.engine.registry import register
from activities.models import SubjectKind
from activities.selectors_subjects import request_view
from activities.services.assists import help_request

from .base import Processor
from .checks import field_problems, field_schema, text_value


@register
class Assist(Processor):
    """Count the customer's help on the request the event names; the help that completes it
    fulfils it.

    Counted once per friend per request, never from the initiator; of any number of helpers at
    once exactly `helpers_needed` count and one run sees `subject.state` become `fulfilled`,
    with `subject.initiator` ready for an `emit_event` step that credits the initiator.
    """

    key = "assist"
    label = _("Help a friend's request")
    description = _(
        "Counts this customer's help on the request whose code is in `field` (default "
        "event.request). Refused: their own request, a second help, a closed or expired "
        "request; with `new_customers_only`, customers first seen before the request opened."
    )
    config_schema = {
        "type": "object",
        "properties": {"field": field_schema, "new_customers_only": {"type": "boolean"}},
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        return field_problems(config, "field")

    def process(self, ctx: RunContext) -> None:
        code = text_value(ctx, self.config.get("field", "event.request"), missing="request_missing")
        request = help_request(
            activity_id=ctx.activity.id,
            code=code,
            helper=ctx.customer,
            now=ctx.now,
            new_customers_only=self.config.get("new_customers_only", False),
        )
        view = request_view(request)
        ctx.subject = Subject(kind=SubjectKind.REQUEST, id=request.code, values=view)
        ctx.result["request"] = view

import zoneinfo
from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext, Subject
from activities.engine.errors import ConfigError, Rejected
from activities.engine.registry import register
from activities.models import SubjectKind
from activities.services.subjects import ALL_TIME, count_for_subject

from .base import Processor
from .checks import field_problems, field_schema, text_value


@register
class CountSubject(Processor):
    """Count the customer's action for a subject the event names (a vote for a candidate, an
    invitation for the inviter): the subject's counter, readable as `subject.<key>`.

    With `once_per` the customer counts for one subject at most once a day (local to the
    activity) or once over the activity: a unique row decides, so a repeat is refused even when
    both arrive at once. With `limit` the subject's count never passes it.
    """

    key = "count_subject"
    label = _("Count for a subject")
    description = _(
        "Adds one to the counter `key` of the subject named by `field` (a candidate, another "
        "customer, a team): live tallies. `once_per` day or activity refuses a second count "
        "by the same customer for the same subject; `limit` caps the subject's count; "
        "`subjects` lists the only subjects allowed."
    )
    default_reason = "already_counted"
    config_schema = {
        "type": "object",
        "properties": {
            "key": {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,63}$"},
            "kind": {"enum": list(SubjectKind.values)},
            "field": field_schema,
            "once_per": {"enum": ["day", "activity"]},
            "limit": {"type": "integer", "minimum": 1},
            "subjects": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": {"type": "string", "minLength": 1, "maxLength": 128},
            },
        },
        "required": ["key", "kind", "field"],
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        return field_problems(config, "field")

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.allowed = frozenset(config.get("subjects", ())) or None

    def process(self, ctx: RunContext) -> None:
        kind = self.config["kind"]
        subject = text_value(ctx, self.config["field"], missing="subject_missing")
        if self.allowed is not None and subject not in self.allowed:
            raise Rejected("unknown_subject")
        if kind == SubjectKind.CUSTOMER and subject == ctx.customer.external_id:
            raise Rejected("own_subject")
        count = count_for_subject(
            activity_id=ctx.activity.id,
            kind=kind,
            subject=subject,
            key=self.config["key"],
            actor_id=ctx.customer.pk,
            period=self._period(ctx),
            limit=self.config.get("limit"),
        )
        ctx.subject = Subject(kind=kind, id=subject, values={self.config["key"]: count})
        ctx.result[self.config["key"]] = {"subject": subject, "count": count}

    def _period(self, ctx: RunContext) -> str | None:
        once_per = self.config.get("once_per")
        if once_per == "day":
            return ctx.now.astimezone(zoneinfo.ZoneInfo(ctx.activity.timezone)).date().isoformat()
        if once_per == "activity":
            return ALL_TIME
        return None

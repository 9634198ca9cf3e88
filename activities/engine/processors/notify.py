import datetime as dt
from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError, StepFailed
from activities.engine.registry import register
from notifications import rendering
from notifications.models import DeliveryStatus, NotificationTemplate
from notifications.services.transactional import Caps, queue_transactional
from notifications.tasks import send_delivery_task

from .base import Processor

TIME_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9]$"


@register
class Notify(Processor):
    """Send the customer a message from a notification template once the run commits.

    Transactional ("you won", "your coupon"): consent, unsubscribe and a missing address still
    skip it, but frequency caps and quiet hours apply only when configured here. The message
    is rendered inside the run — a placeholder without a value fails the step — and sent after
    commit on the `sends` queue, so a run that rolls back sends nothing.
    """

    key = "notify"
    label = _("Notify the customer")
    description = _(
        "Render a notification template for this customer (with event, vars and activity "
        "placeholders) and send it after the run commits."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "template": {"type": "string", "minLength": 1, "maxLength": 100},
            "frequency_cap": {
                "type": "object",
                "properties": {
                    "messages": {"type": "integer", "minimum": 1},
                    "window_hours": {"type": "integer", "minimum": 1, "maximum": 24 * 31},
                },
                "required": ["messages", "window_hours"],
                "additionalProperties": False,
            },
            "quiet_hours": {
                "type": "object",
                "properties": {
                    "start": {"type": "string", "pattern": TIME_PATTERN},
                    "end": {"type": "string", "pattern": TIME_PATTERN},
                },
                "required": ["start", "end"],
                "additionalProperties": False,
            },
        },
        "required": ["template"],
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        if not NotificationTemplate.objects.filter(code=config["template"]).exists():
            return [
                ConfigError(
                    path="template",
                    message=str(_("No notification template has the code %(code)s."))
                    % {"code": config["template"]},
                    code="unknown_template",
                )
            ]
        return []

    def process(self, ctx: RunContext) -> None:
        if not ctx.run.pk:
            raise StepFailed("run_not_saved")
        template = NotificationTemplate.objects.filter(code=self.config["template"]).first()
        if template is None:
            raise StepFailed("unknown_template", self.config["template"])
        cap = self.config.get("frequency_cap")
        quiet = self.config.get("quiet_hours")
        data = {
            "customer": rendering.customer_data(ctx.customer),
            "event": ctx.event.payload or {},
            "vars": {k: v for k, v in ctx.vars.items() if not k.startswith("_")},
            "activity": {"code": ctx.activity.code},
        }
        try:
            result = queue_transactional(
                template=template,
                customer=ctx.customer,
                data=data,
                source_key=f"run:{ctx.run.pk}:step:{ctx.step_index}",
                default_timezone=ctx.activity.timezone,
                now=ctx.now,
                caps=Caps(
                    frequency_cap=cap["messages"] if cap else None,
                    frequency_window=dt.timedelta(hours=cap["window_hours"] if cap else 24),
                    quiet_start=dt.time.fromisoformat(quiet["start"]) if quiet else None,
                    quiet_end=dt.time.fromisoformat(quiet["end"]) if quiet else None,
                ),
            )
        except rendering.RenderError as error:
            raise StepFailed("render_error", str(error)) from error
        if result.status == DeliveryStatus.QUEUED and result.delivery_id is not None:
            delivery_id = result.delivery_id
            ctx.on_commit(lambda: send_delivery_task.delay(delivery_id))

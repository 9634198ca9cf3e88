from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError, StepFailed
from activities.engine.registry import register
from activities.services.webhooks import schedule_webhook
from core.webhook_targets import url_problem

from .base import Processor


@register
class CallWebhook(Processor):
    """POST this run's grants to an external benefit system after the run commits.

    The call is a row written with the run (`WebhookCall`, the outbox), signed, and sent only to
    a public address. Each call carries an `Idempotency-Key` derived from the run and step, so
    the receiver can dedupe the retries that follow a timeout.
    """

    key = "call_webhook"
    label = _("Call a webhook")
    description = _(
        "After the run commits, POST {activity, customer, event, grants, vars} to the URL "
        "(https, a public address), signed, retried with backoff until it answers 2xx; a call "
        "that never succeeds is listed under webhook calls."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
            "only_with_grants": {"type": "boolean"},
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        problem = url_problem(config["url"])
        return [ConfigError(path="url", message=problem)] if problem else []

    def process(self, ctx: RunContext) -> None:
        if self.config.get("only_with_grants") and not ctx.grants:
            return
        if not ctx.run.pk:
            raise StepFailed("run_not_saved")
        body: dict[str, Any] = {
            "activity": ctx.activity.code,
            "customer": ctx.customer.external_id,
            "event": str(ctx.event.pk),
            "grants": [
                {
                    "id": grant.pk,
                    "benefit": grant.benefit.code,
                    "quantity": grant.quantity,
                    "idempotency_key": grant.idempotency_key,
                }
                for grant in ctx.grants
            ],
            "vars": {k: v for k, v in ctx.vars.items() if not k.startswith("_")},
        }
        schedule_webhook(
            ctx=ctx,
            url=self.config["url"],
            body=body,
            idempotency_key=f"run:{ctx.run.pk}:step:{ctx.step_index}",
        )

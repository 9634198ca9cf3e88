"""A generic webhook: one signed JSON POST per message with an Idempotency-Key.

Body: {"idempotency_key", "delivery", "broadcast", "customer", "subject", "body", "fields"}.
With a secret set, the body is signed as every Gambit webhook is (`core.signing`:
`X-Gambit-Timestamp` and `X-Gambit-Signature`), so the receiver can check it came from us and is
not a replay. Outcomes as for SMS.
"""

from __future__ import annotations

import json

import httpx
from django.conf import settings

from core.signing import signature_headers

from . import (
    Backend,
    Message,
    Session,
    TransientFailure,
    check_http_response,
    http_client,
    register,
)


class _WebhookSession(Session):
    def __init__(self, config: dict, timeout: float) -> None:
        self.config = config
        self.client = http_client(timeout)

    def send(self, message: Message) -> str:
        raw = json.dumps(
            {
                "idempotency_key": message.idempotency_key,
                "delivery": message.delivery_id,
                "broadcast": message.broadcast_id,
                "customer": message.customer,
                "subject": message.subject,
                "body": message.body,
                "fields": message.fields,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = {"Idempotency-Key": message.idempotency_key, "Content-Type": "application/json"}
        if self.config["SECRET"]:
            headers.update(signature_headers(secret=self.config["SECRET"], raw=raw))
        try:
            response = self.client.post(self.config["URL"], headers=headers, content=raw)
        except httpx.HTTPError as error:
            raise TransientFailure("webhook_unavailable", str(error)) from error
        return str(check_http_response(response).get("id", ""))

    def close(self) -> None:
        self.client.close()


@register
class WebhookBackend(Backend):
    key = "webhook"
    address_field = "external_id"
    consent_field = None

    def __init__(self) -> None:
        self.config = settings.NOTIFICATIONS_WEBHOOK

    def problems(self) -> list[str]:
        return [] if self.config["URL"] else ["NOTIFICATIONS_WEBHOOK_URL is not set"]

    def session(self) -> Session:
        return _WebhookSession(self.config, settings.NOTIFICATIONS_HTTP_TIMEOUT)

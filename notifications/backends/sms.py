"""A generic SMS gateway over HTTP: one JSON POST per message with an Idempotency-Key.

Body: {"to", "text", "template", "sender"}; `Authorization: Bearer <token>` when a token is
set. 2xx: sent (the answer's "id" kept as the provider message id); 408/425/429/5xx and
transport errors: retried (honouring Retry-After); other 4xx: failed.
"""

from __future__ import annotations

import httpx
from django.conf import settings

from . import (
    Backend,
    Message,
    Session,
    TransientFailure,
    check_http_response,
    http_client,
    register,
)


class _SmsSession(Session):
    def __init__(self, config: dict, timeout: float) -> None:
        self.config = config
        self.client = http_client(timeout)

    def send(self, message: Message) -> str:
        headers = {"Idempotency-Key": message.idempotency_key}
        if self.config["TOKEN"]:
            headers["Authorization"] = f"Bearer {self.config['TOKEN']}"
        try:
            response = self.client.post(
                self.config["URL"],
                headers=headers,
                json={
                    "to": message.address,
                    "text": message.body,
                    "template": message.provider_template_id or None,
                    "sender": self.config["SENDER"] or None,
                },
            )
        except httpx.HTTPError as error:
            raise TransientFailure("sms_unavailable", str(error)) from error
        return str(check_http_response(response).get("id", ""))

    def close(self) -> None:
        self.client.close()


@register
class SmsBackend(Backend):
    key = "sms"
    address_field = "phone"
    consent_field = "sms_consent"

    def __init__(self) -> None:
        self.config = settings.NOTIFICATIONS_SMS

    def problems(self) -> list[str]:
        return [] if self.config["URL"] else ["NOTIFICATIONS_SMS_URL is not set"]

    def session(self) -> Session:
        return _SmsSession(self.config, settings.NOTIFICATIONS_HTTP_TIMEOUT)

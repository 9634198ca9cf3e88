"""Operator tools for a template: preview it for a customer, send one test message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from notifications import rendering
from notifications.backends import (
    Message,
    PermanentFailure,
    Skip,
    TransientFailure,
    backend_class,
    get_backend,
)
from notifications.models import NotificationTemplate
from notifications.services.sending import compose

logger = structlog.get_logger(__name__)


@dataclass
class Preview:
    subject: str = ""
    body: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    address: str = ""
    error: str = ""


def preview_data(*, customer: Any, event: dict[str, Any] | None = None) -> rendering.Scope:
    """What a broadcast (or, with an event, a chain's notify step) would render with."""
    return rendering.Scope(
        {
            "customer": rendering.customer_data(customer),
            "broadcast": {"name": "Preview"},
            "event": event or {},
            "vars": {},
            "activity": {"code": "preview"},
        }
    )


def preview(
    *, template: NotificationTemplate, customer: Any, event: dict[str, Any] | None = None
) -> Preview:
    address = getattr(customer, backend_class(template.channel).address_field, "") or ""
    try:
        message = compose(
            template=template,
            data=preview_data(customer=customer, event=event),
            delivery_id=0,
            address=address,
            customer=customer.external_id,
            broadcast_id=None,
        )
    except rendering.RenderError as error:
        return Preview(address=address, error=str(error))
    return Preview(
        subject=message.subject, body=message.body, fields=message.fields, address=address
    )


@dataclass(frozen=True)
class SendTestResult:
    ok: bool
    detail: str


def send_test_message(
    *,
    template: NotificationTemplate,
    customer: Any,
    address: str = "",
    event: dict[str, Any] | None = None,
) -> SendTestResult:
    """Render for the customer and send once, now, to `address` (default: the customer's).
    Consent, caps and rate limits do not apply: the operator chose the recipient."""
    shown = preview(template=template, customer=customer, event=event)
    if shown.error:
        return SendTestResult(False, shown.error)
    target = address or shown.address
    if not target:
        return SendTestResult(False, "no_address")
    message = Message(
        delivery_id=0,
        address=target,
        subject=shown.subject,
        body=shown.body,
        fields=shown.fields,
        provider_template_id=template.provider_template_id,
        link=template.link,
        customer=customer.external_id,
        key=f"gambit-test-{uuid.uuid4().hex}",
    )
    backend = get_backend(template.channel)
    try:
        with backend.open() as session:
            provider_id = session.send(message)
    except (Skip, PermanentFailure, TransientFailure) as error:
        logger.info("test_send_failed", template=template.code, reason=error.reason)
        return SendTestResult(False, f"{error.reason}: {error}")
    logger.info("test_send", template=template.code, to=target)
    return SendTestResult(True, provider_id)

"""Operator tools for a template: preview it for a customer, send one test message; and the
rule that freezes a template while it is in use."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import structlog
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import GambitError
from notifications import rendering, selectors
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


# Once a template has been sent, its deliveries (and chains) name it by its code, and their
# consent and address were decided for its channel: changing either would rewrite history.
FROZEN_ONCE_SENT = {
    "code": gettext_lazy(
        "This template has been sent, and its messages and chains name it by this code: it can "
        "no longer change. Create a new template instead."
    ),
    "channel": gettext_lazy(
        "This template has been sent on this channel: it can no longer change. Create a new "
        "template for another channel."
    ),
}


class TemplateFrozen(GambitError):
    """An edit a template in use cannot take; `details` lists {path, message, code}, where
    path is the form field ("" for the whole template)."""

    code = "template_in_use"
    http_status = 409


def check_template_edit(*, template_id: int, changed_fields: Collection[str]) -> None:
    """Refuse changes to a template that a live broadcast or activity sends, and a new code or
    channel for one that was ever sent (raises TemplateFrozen).

    Call it in the transaction that saves the edit: it locks the template's row, and
    scheduling or starting a broadcast takes the same lock (`hold_template`), so nothing starts
    sending the template between this check and the save.
    """
    if not changed_fields:
        return
    with transaction.atomic():
        stored = NotificationTemplate.objects.select_for_update().get(pk=template_id)
        problems: list[dict[str, str]] = []
        if users := selectors.live_template_users(template=stored):
            named = [_("broadcast “%(name)s”") % {"name": name} for name in users.broadcasts]
            named += [_("activity %(code)s") % {"code": code} for code in users.activities]
            problems.append(
                {
                    "path": "",
                    "message": _(
                        "This template is in use and cannot change until these have "
                        "finished: %(users)s. To change the wording now, create a new template."
                    )
                    % {"users": ", ".join(named)},
                    "code": "template_in_use",
                }
            )
        frozen = [name for name in FROZEN_ONCE_SENT if name in changed_fields]
        if frozen and selectors.template_ever_sent(template=stored):
            problems.extend(
                {"path": name, "message": str(FROZEN_ONCE_SENT[name]), "code": "template_sent"}
                for name in frozen
            )
    if problems:
        raise TemplateFrozen(" ".join(problem["message"] for problem in problems), details=problems)


def hold_template(*, template_id: int) -> NotificationTemplate:
    """The template, its row locked until the caller's transaction ends: an edit checked
    concurrently (`check_template_edit`) either commits first, and is what the caller gets, or
    waits and then sees the caller's use."""
    return NotificationTemplate.objects.select_for_update(no_key=True).get(pk=template_id)

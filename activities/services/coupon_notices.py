"""The message that follows an issue to a segment: each customer sees their own coupon.

Rendered and recorded (one Delivery per issue and customer, keyed `issue:<job>:<customer>`) in
the page's transaction, so a page that rolls back sends nothing and a page redone after a crash
sends nothing twice; the sends leave after commit on the `sends` queue, and the delivery sweep
picks up any the broker lost.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils.translation import gettext as _

from activities.models import BenefitIssue
from core.errors import InvalidConfiguration
from notifications import enqueue as notification_enqueue
from notifications import rendering
from notifications.models import DeliveryStatus, NotificationTemplate
from notifications.services.transactional import Caps, queue_transactional
from segments.models import Customer

NOTICE_ROOTS = frozenset({"customer", "coupon", "activity"})
DISPLAY_FORMAT = "%Y-%m-%d %H:%M"


def check_template(template: NotificationTemplate) -> None:
    """An issue's message has the customer, their coupon and the activity code, no event."""
    used = {
        label.split(".", 1)[0]
        for source in template.sources().values()
        for label in rendering.placeholders(source)
    }
    if extra := sorted(used - NOTICE_ROOTS):
        raise InvalidConfiguration(
            _(
                "This template uses %(roots)s, which a message after an issue does not have; "
                "use customer, coupon and activity placeholders."
            )
            % {"roots": ", ".join(extra)}
        )


def _local(value: dt.datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime(DISPLAY_FORMAT) if value else ""


def queue_notices(
    *,
    issue: BenefitIssue,
    granted: list[tuple[int, str | None, dt.datetime | None]],
    now: dt.datetime,
) -> int:
    """Record one message per granted customer; returns how many were queued to send."""
    template = issue.notification_template
    activity = issue.activity
    benefit = issue.benefit
    zone = ZoneInfo(activity.timezone)
    if template is None:
        return 0
    customers = Customer.objects.in_bulk([customer_id for customer_id, _c, _u in granted])
    queued: list[int] = []
    for customer_id, code, valid_until in granted:
        customer = customers[customer_id]
        data = {
            "customer": rendering.customer_data(customer),
            "activity": {"code": activity.code},
            "coupon": {
                "code": code or "",
                "valid_until": _local(valid_until, zone),
                "value": "" if benefit.value is None else str(benefit.value),
            },
        }
        result = queue_transactional(
            template=template,
            customer=customer,
            data=data,
            source_key=f"issue:{issue.pk}:{customer_id}",
            default_timezone=activity.timezone,
            now=now,
            caps=Caps(),
        )
        if result.status == DeliveryStatus.QUEUED and result.delivery_id is not None:
            queued.append(result.delivery_id)
    for delivery_id in queued:
        transaction.on_commit(partial(notification_enqueue.send_delivery, delivery_id=delivery_id))
    return len(queued)

"""Transactional messages: one customer, one template, rendered inside a chain run.

The message is rendered and its Delivery row written in the run's transaction (so a run that
rolls back sends nothing), through the same consent/address decisions as a broadcast's page.
Frequency caps and quiet hours apply only when the step configures them. The send happens
after commit, on the `sends` queue, with the same backends, rate limit and retries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from notifications import rendering
from notifications.models import NotificationTemplate
from notifications.services.plan_statements import Policy
from notifications.services.planning import SingleResult, plan_single
from notifications.services.sending import compose


@dataclass(frozen=True)
class Caps:
    frequency_cap: int | None = None
    frequency_window: dt.timedelta = dt.timedelta(hours=24)
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None


def queue_transactional(
    *,
    template: NotificationTemplate,
    customer: Any,
    data: dict[str, Any],
    source_key: str,
    default_timezone: str,
    now: dt.datetime,
    caps: Caps,
) -> SingleResult:
    """Render (raises RenderError) and record one message; returns its delivery's decision."""
    message = compose(
        template=template,
        data=rendering.Scope(data),
        delivery_id=0,
        address="",
        customer=customer.external_id,
        broadcast_id=None,
    )
    policy = Policy(
        channel=template.channel,
        default_timezone=default_timezone,
        now=now,
        frequency_cap=caps.frequency_cap,
        frequency_window=caps.frequency_window,
        quiet_start=caps.quiet_start,
        quiet_end=caps.quiet_end,
        dedupe_addresses=False,
    )
    return plan_single(
        customer_id=customer.pk,
        policy=policy,
        source_key=source_key,
        rendered={
            "template": template.code,
            "subject": message.subject,
            "body": message.body,
            "fields": message.fields,
            "provider_template_id": message.provider_template_id,
            "link": message.link,
        },
        counts_toward_cap=caps.frequency_cap is not None,
    )

"""Reads: a broadcast's progress (for the API, the admin page and its polling endpoint), and
who uses a notification template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from notifications import activity_senders
from notifications.backends import backend_class
from notifications.models import (
    Broadcast,
    BroadcastState,
    Delivery,
    NotificationTemplate,
    SkipReason,
)
from segments.selectors import segment_customers

# A broadcast in these states has sent, or will send, its template.
LIVE_BROADCAST_STATES = (BroadcastState.SCHEDULED, BroadcastState.SENDING, BroadcastState.PAUSED)


def progress(broadcast: Broadcast) -> dict[str, Any]:
    """Counters as the database holds them (every change is a conditional UPDATE)."""
    finished = broadcast.sent + broadcast.failed + broadcast.skipped
    return {
        "state": broadcast.state,
        "state_reason": broadcast.state_reason,
        "planning_done": broadcast.planned_at is not None,
        "planned": broadcast.planned,
        "sent": broadcast.sent,
        "failed": broadcast.failed,
        "skipped": broadcast.skipped,
        "skipped_by_reason": dict(sorted((broadcast.skipped_by_reason or {}).items())),
        "outstanding": broadcast.outstanding,
        "errors_since_resume": broadcast.error_count,
        "percent": round(100 * finished / broadcast.planned, 1) if broadcast.planned else 0.0,
    }


def broadcast_progress(*, broadcast_id: int) -> dict[str, Any] | None:
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    return None if broadcast is None else progress(broadcast)


@dataclass(frozen=True)
class TemplateUsers:
    """Who may still send a template: broadcast names and activity codes."""

    broadcasts: list[str]
    activities: list[str]

    def __bool__(self) -> bool:
        return bool(self.broadcasts or self.activities)


def live_template_users(*, template: NotificationTemplate) -> TemplateUsers:
    """The scheduled, sending or paused broadcasts of the template, and the live activities
    whose chains send it (as the row stands in the database: pass the stored code)."""
    broadcasts = (
        Broadcast.objects.filter(template_id=template.pk, state__in=LIVE_BROADCAST_STATES)
        .values_list("name", flat=True)
        .order_by("name")
    )
    return TemplateUsers(
        broadcasts=list(broadcasts),
        activities=activity_senders.live_activities_sending(template_code=template.code),
    )


def template_ever_sent(*, template: NotificationTemplate) -> bool:
    """Whether any broadcast or any chain's message was ever made from the template."""
    if Broadcast.objects.filter(template_id=template.pk).exists():
        return True
    # A chain's message keeps its template's code in its rendered copy. No index covers that
    # code (one would cost every chain message a write): this reads every chain message, and
    # runs only when an operator changes a template's code or channel.
    return Delivery.objects.filter(
        broadcast__isnull=True, rendered__template=template.code
    ).exists()


def audience_preview(*, segment_id: int, channel: str) -> dict[str, Any]:
    """Who a broadcast of `channel` to the segment would reach now, in one aggregate query:
    the members, and those the planner will skip for reasons known before sending
    (unsubscribed, no consent, no address; first reason wins, as in the planner). Quiet hours
    and frequency caps depend on the moment each message goes out and are decided then."""
    backend = backend_class(channel)
    subscribed = Q(unsubscribed_at__isnull=True)
    consenting = subscribed & (Q(**{backend.consent_field: True}) if backend.consent_field else Q())
    counts = segment_customers(segment_id=segment_id).aggregate(
        members=Count("pk"),
        unsubscribed=Count("pk", filter=~subscribed),
        no_consent=Count("pk", filter=subscribed & ~consenting),
        no_address=Count("pk", filter=consenting & Q(**{backend.address_field: ""})),
    )
    skipped = {
        reason: counts[reason]
        for reason in (SkipReason.UNSUBSCRIBED, SkipReason.NO_CONSENT, SkipReason.NO_ADDRESS)
        if counts[reason]
    }
    return {
        "members": counts["members"],
        "reachable": counts["members"] - sum(skipped.values()),
        "skipped": skipped,
    }

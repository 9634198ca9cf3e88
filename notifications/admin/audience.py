"""A broadcast's audience before it goes out: how many customers the segment holds, how many
the message can reach, and who will be skipped and why. Shown on the "Send now" confirmation
and, live, on the broadcast form as the segment is picked."""

from __future__ import annotations

from typing import Any

from django import http
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from notifications import selectors
from notifications.models import Broadcast, NotificationTemplate, SkipReason


def labelled_audience(*, segment_id: int, channel: str) -> dict[str, Any]:
    audience = selectors.audience_preview(segment_id=segment_id, channel=channel)
    reasons = dict(SkipReason.choices)
    return {
        **audience,
        "skipped": [
            {"reason": code, "label": str(reasons[code]), "count": count}
            for code, count in audience["skipped"].items()
        ],
    }


def audience_html(broadcast: Broadcast) -> str:
    audience = labelled_audience(
        segment_id=broadcast.segment_id, channel=broadcast.template.channel
    )
    skipped = format_html_join(
        "",
        "<li>{}: {}</li>",
        ((row["label"], row["count"]) for row in audience["skipped"]),
    )
    return format_html(
        '<div id="gambit-audience"><p>{}</p>{}<p class="help">{}</p></div>',
        _("%(members)d customers in the segment; %(reachable)d can be sent to now.")
        % {"members": audience["members"], "reachable": audience["reachable"]},
        format_html("<p>{}</p><ul>{}</ul>", _("Will be skipped:"), skipped)
        if audience["skipped"]
        else "",
        _(
            "Quiet hours and frequency caps are checked as each message goes out, so a few "
            "more may be skipped then."
        ),
    )


def audience_view(model_admin: Any, request: http.HttpRequest) -> http.JsonResponse:
    """GET ?segment=<id>&template=<id> -> the audience the broadcast form shows live."""
    if not model_admin.has_view_permission(request):
        raise http.Http404
    try:
        segment_id = int(request.GET.get("segment", ""))
        template = NotificationTemplate.objects.get(pk=int(request.GET.get("template", "")))
    except (ValueError, NotificationTemplate.DoesNotExist):
        return http.JsonResponse({})
    audience = labelled_audience(segment_id=segment_id, channel=template.channel)
    audience["text"] = _(
        "%(members)d customers in the segment; %(reachable)d can be sent to now."
    ) % {
        "members": audience["members"],
        "reachable": audience["reachable"],
    }
    return http.JsonResponse(audience)

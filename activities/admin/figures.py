"""An activity's figures page: events, participants, grants by benefit, stock left, rejections
by reason, per day in the activity's zone; charts drawn by the vendored Chart.js."""

from __future__ import annotations

import json
from typing import Any

from django import http
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from activities import selectors_dashboard
from activities.models import Activity
from activities.reason_labels import reason_label
from core.admin.sentences import sentence


def chart_strings() -> dict[str, str]:
    """Every text the charts show, translated on the server."""
    strings = {
        "events": _("events"),
        "passed_rules": _("passed the rules"),
        "passed_limits": _("within the limits"),
        "granted": _("granted"),
        "runs": _("runs"),
        "day": _("day"),
        "count": _("count"),
        "participants": _("participants"),
        "grants": _("grants"),
        "units": _("units granted"),
        "remaining": _("stock left"),
        "rejections": _("rejected runs"),
        "customers": _("customers"),
        "messages": _("messages"),
        "empty": _("No runs yet."),
        "unlimited": _("unlimited"),
    }
    return {key: sentence(text) for key, text in strings.items()}


def figures(activity: Activity) -> dict[str, Any]:
    data = selectors_dashboard.activity_stats(activity_id=activity.pk)
    for row in data["rejections"]:
        row["label"] = sentence(reason_label(row["reason"]) or _("(no reason given)"))
    return data


def figures_view(model_admin: Any, request: http.HttpRequest, object_id: str) -> http.HttpResponse:
    activity = get_object_or_404(Activity, pk=object_id)
    if not model_admin.has_view_permission(request, activity):
        raise PermissionDenied
    data = figures(activity)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Activity._meta,
        "original": activity,
        "title": _("Figures of %(activity)s") % {"activity": activity},
        "figures": data,
        # Data attributes, not inline scripts: the page's policy allows no inline <script>.
        "figures_json": json.dumps(data, ensure_ascii=False),
        "strings_json": json.dumps(chart_strings(), ensure_ascii=False),
    }
    return TemplateResponse(request, "admin/activities/activity/figures.html", context)

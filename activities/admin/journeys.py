"""Journeys in the back-office: customers waiting per step, and cancelling one's wait."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from activities.engine import registry
from activities.models import Activity, WaitingRun, WaitState
from activities.reason_labels import reason_label
from activities.selectors_journeys import waiting_per_step
from activities.services import journeys
from core.admin.base import ReadOnlyAdmin
from core.timezones import describe


def waiting_table(activity: Activity) -> str:
    """One line per wait step: channel, step number, kind of wait, customers waiting now."""
    rows = waiting_per_step(activity=activity)
    if not rows:
        return "-"
    changelist = reverse("admin:activities_waitingrun_changelist")
    lines = []
    for row in rows:
        processor = registry.get(row.processor) if row.processor else None
        label = processor.label if processor else gettext("an earlier version's step")
        link = (
            f"{changelist}?activity__id__exact={activity.pk}&step={row.step}"
            f"&state__exact={WaitState.WAITING}"
        )
        lines.append((row.channel, row.step + 1, label, link, row.waiting))
    return format_html(
        '<table class="gambit-waiting"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}'
        "</table>",
        gettext("channel"),
        gettext("step"),
        gettext("wait"),
        gettext("customers waiting now"),
        format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td>{}</td><td><a href="{}">{}</a></td></tr>',
            lines,
        ),
    )


_SHOWN = ["run", "activity", "customer", "step_number", "state", "resumes", "why", "created_at"]


@admin.register(WaitingRun)
class WaitingRunAdmin(ReadOnlyAdmin):
    list_display = ["run", "activity", "customer", "step_number", "state", "resumes", "why"]
    list_filter = ["state", "activity"]
    search_fields = ["customer__external_id", "activity__code"]
    list_select_related = ["activity", "customer", "run"]
    actions = ["cancel"]
    fields = _SHOWN
    readonly_fields = _SHOWN

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # The activity page links here per step.
        return lookup == "step" or super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("waiting at step"), ordering="step")
    def step_number(self, obj: WaitingRun) -> int:
        return obj.step + 1

    @admin.display(description=_("resumes at"), ordering="due_at")
    def resumes(self, obj: WaitingRun) -> str:
        return describe(obj.due_at, obj.activity.timezone)

    @admin.display(description=_("why"))
    def why(self, obj: WaitingRun) -> str:
        return reason_label(obj.reason) or "-"

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("activities.pause_activity")

    @admin.action(permissions=["cancel"], description=_("Cancel the selected customers' waits"))
    def cancel(self, request: HttpRequest, queryset: Any) -> None:
        count = sum(
            journeys.cancel_run(run_id=run_id)
            for run_id in queryset.filter(state=WaitState.WAITING).values_list("pk", flat=True)
        )
        if not count:
            self.message_user(
                request, gettext("None of the selected runs is waiting."), messages.WARNING
            )
            return
        self.message_user(
            request,
            ngettext(
                "%(count)d customer's wait was cancelled.",
                "%(count)d customers' waits were cancelled.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

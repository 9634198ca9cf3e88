"""Runtime rows the engine writes: events, chain runs (with readable traces), participations.

Read-only: a trace is evidence of what happened, and nobody edits evidence. The one operation
is running a failed event (a dead letter) again, through its service.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from activities.engine import registry
from activities.models import ChainRun, Event, Participation
from activities.reason_labels import reason_label
from activities.selectors import benefit_balances
from activities.services.event_attempts import rerun_events
from core.admin.base import ReadOnlyAdmin

STEP_OUTCOMES = {
    "passed": _("passed"),
    "skipped": _("skipped"),
    "rejected": _("rejected"),
    "failed": _("failed"),
}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def trace_table(steps: list[dict[str, Any]]) -> str:
    """A run's step trace as a table: number, processor, outcome, reason, milliseconds."""
    if not steps:
        return str(_("No steps ran."))
    labels = dict(registry.choices())
    header = format_html(
        "<tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        _("processor"),
        _("outcome"),
        _("reason"),
        _("ms"),
    )
    rows = format_html_join(
        "",
        '<tr class="gambit-step-{}"><td>{}</td><td>{}</td>'
        '<td><span class="gambit-outcome gambit-outcome-{}">{}</span></td>'
        "<td>{}</td><td>{}</td></tr>",
        (
            (
                step.get("outcome", ""),
                index,
                labels.get(step.get("processor", ""), step.get("processor", "")),
                step.get("outcome", ""),
                STEP_OUTCOMES.get(step.get("outcome", ""), step.get("outcome", "")),
                reason_label(step.get("reason", "")),
                step.get("ms", ""),
            )
            for index, step in enumerate(steps, start=1)
        ),
    )
    return format_html('<table class="gambit-table gambit-trace">{}{}</table>', header, rows)


def mapping_table(data: dict[str, Any]) -> str:
    """A dict as a two-column table; nested values as indented JSON."""
    if not data:
        return "-"
    return format_html(
        '<table class="gambit-table">{}</table>',
        format_html_join(
            "",
            "<tr><th>{}</th><td><pre class='gambit-mono'>{}</pre></td></tr>",
            (
                (key, value if isinstance(value, (str, int, float)) else _json(value))
                for key, value in sorted(data.items())
            ),
        ),
    )


class RunInline(admin.TabularInline):
    model = ChainRun
    extra = 0
    can_delete = False
    fields = ["run_link", "activity", "outcome", "reason", "duration_ms"]
    readonly_fields = fields

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("run"))
    def run_link(self, obj: ChainRun) -> str:
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:activities_chainrun_change", args=[obj.pk]),
            obj.pk,
        )


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "channel",
        "customer",
        "state",
        "activity",
        "attempts",
        "failure_reason",
        "error_summary",
        "created_at",
    ]
    list_filter = ["state", "failure_reason", "channel", "created_at"]
    actions = ["rerun"]
    search_fields = ["id", "idempotency_key", "customer__external_id", "channel__code"]
    list_select_related = ["channel", "customer", "activity"]
    date_hierarchy = "created_at"
    inlines = [RunInline]
    fields = [
        "id",
        "channel",
        "customer",
        "activity",
        "client",
        "idempotency_key",
        "payload_table",
        "state",
        "attempts",
        "failure_reason",
        "error",
        "parent_run",
        "depth",
        "created_at",
        "dispatched_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("payload"))
    def payload_table(self, obj: Event) -> str:
        return mapping_table(obj.payload)

    @admin.display(description=_("error"))
    def error_summary(self, obj: Event) -> str:
        return Truncator(obj.error).chars(80) or "-"

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("activities.rerun_event")

    @admin.action(permissions=["rerun"], description=_("Run the selected failed events again"))
    def rerun(self, request: HttpRequest, queryset: Any) -> None:
        count = rerun_events(event_ids=queryset.values_list("pk", flat=True))
        if not count:
            self.message_user(
                request, gettext("None of the selected events has failed."), messages.WARNING
            )
            return
        self.message_user(
            request,
            ngettext(
                "%(count)d failed event will run again.",
                "%(count)d failed events will run again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )


@admin.register(ChainRun)
class ChainRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "activity",
        "customer",
        "outcome",
        "reason_text",
        "duration_ms",
        "created_at",
    ]
    list_filter = ["outcome", "activity", "created_at"]
    search_fields = ["customer__external_id", "activity__code", "reason", "event__id"]
    list_select_related = ["activity", "customer"]
    date_hierarchy = "created_at"
    fields = [
        "event",
        "activity",
        "customer",
        "outcome",
        "reason_text",
        "trace",
        "result_table",
        "grants_list",
        "error",
        "template_version",
        "duration_ms",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("reason"))
    def reason_text(self, obj: ChainRun) -> str:
        return reason_label(obj.reason) or "-"

    @admin.display(description=_("step trace"))
    def trace(self, obj: ChainRun) -> str:
        return trace_table(obj.steps)

    @admin.display(description=_("result"))
    def result_table(self, obj: ChainRun) -> str:
        return mapping_table(obj.result)

    @admin.display(description=_("grants"))
    def grants_list(self, obj: ChainRun) -> str:
        grants = obj.grants.select_related("benefit")
        if not grants:
            return "-"
        return format_html_join(
            "",
            '<div><a href="{}">{} x{}</a> ({})</div>',
            (
                (
                    reverse("admin:activities_grant_change", args=[grant.pk]),
                    grant.benefit.code,
                    grant.quantity,
                    grant.get_state_display(),
                )
                for grant in grants
            ),
        )


@admin.register(Participation)
class ParticipationAdmin(ReadOnlyAdmin):
    list_display = ["activity", "customer", "version", "created_at", "updated_at"]
    list_filter = ["activity"]
    search_fields = ["customer__external_id", "activity__code"]
    list_select_related = ["activity", "customer"]
    fields = [
        "activity",
        "customer",
        "balances",
        "data_table",
        "version",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("benefits held, unused"))
    def balances(self, obj: Participation) -> str:
        held = benefit_balances(activity_id=obj.activity_id, customer_id=obj.customer_id)
        return mapping_table(held)

    @admin.display(description=_("context keys"))
    def data_table(self, obj: Participation) -> str:
        return mapping_table(obj.data)

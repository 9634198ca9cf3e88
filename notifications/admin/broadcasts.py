"""Broadcasts in the back-office: transition buttons through the lifecycle services and a live
progress bar."""

from __future__ import annotations

from typing import Any

import reversion
from django import forms, http
from django.contrib import admin
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from reversion_compare.admin import CompareVersionAdmin

from core.admin.base import ReasonForm, ServiceErrorsMixin, TransitionAdminMixin, TransitionButton
from core.timezones import LocalDateTimeField, LocalDateTimeFormMixin
from notifications import selectors
from notifications.admin.audience import audience_html, audience_view
from notifications.models import Broadcast, BroadcastKind, BroadcastState, SkipReason
from notifications.services import broadcasts as services
from notifications.services.scheduling import parse_cron


def _run(service: Any, **fixed: Any) -> Any:
    def run(obj: Broadcast, user: Any, data: dict[str, Any]) -> Any:
        return service(broadcast_id=obj.pk, by=user, **fixed, **data)

    return run


BROADCAST_BUTTONS = {
    "schedule": TransitionButton(
        run=_run(services.schedule_broadcast),
        label=_("Schedule"),
        done=_("Scheduled."),
        help_text=_("Once: send at the start time. Recurring and birthday: start firing."),
    ),
    "unschedule": TransitionButton(
        run=_run(services.unschedule_broadcast),
        label=_("Unschedule"),
        done=_("Back to draft."),
    ),
    "start": TransitionButton(
        run=_run(services.start_broadcast),
        label=_("Send now"),
        done=_("Sending started."),
        help_text=_("Plan the segment and start sending now."),
        confirm=True,
    ),
    "pause": TransitionButton(
        run=_run(services.pause_broadcast),
        label=_("Pause"),
        done=_("Paused: senders stop after the message in hand."),
        form=ReasonForm,
    ),
    "resume": TransitionButton(
        run=_run(services.resume_broadcast),
        label=_("Resume"),
        done=_("Resumed."),
        help_text=_("Sending continues; waiting retries are tried now."),
    ),
    "cancel": TransitionButton(
        run=_run(services.cancel_broadcast),
        label=_("Cancel"),
        done=_("Cancelled: nothing more will be sent."),
        destructive=True,
        form=ReasonForm,
    ),
}

EDITABLE_STATES = (BroadcastState.DRAFT,)


class BroadcastForm(LocalDateTimeFormMixin, forms.ModelForm):
    """The start time is typed as a wall time in the broadcast's own timezone (DST gaps and
    overlaps are refused on the field) and stored in UTC."""

    send_at = LocalDateTimeField(label=capfirst(_("send at")), required=False)
    local_datetime_fields = ("send_at",)

    class Meta:
        model = Broadcast
        fields = [
            "name",
            "template",
            "segment",
            "kind",
            "timezone",
            "send_at",
            "cron",
            "birthday_hour",
            "frequency_cap",
            "frequency_window",
            "quiet_start",
            "quiet_end",
            "rate_limit",
            "batch_size",
            "pause_after_errors",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if kind == BroadcastKind.BIRTHDAY and data.get("birthday_hour") is None:
            self.add_error("birthday_hour", _("A birthday broadcast needs the local hour."))
        if kind == BroadcastKind.RECURRING:
            try:
                parse_cron(data.get("cron") or "")
            except ValueError as error:
                self.add_error("cron", str(error))
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None):
            self.add_error("quiet_end", _("Give both ends of the quiet hours, or neither."))
        return data


def labelled_progress(broadcast: Broadcast) -> dict[str, Any]:
    """The progress counters with the state and each skip reason in words."""
    shown = selectors.progress(broadcast)
    reasons = dict(SkipReason.choices)
    return {
        **shown,
        "state_label": str(BroadcastState(broadcast.state).label),
        "skipped_labels": {
            code: str(reasons.get(code, code)) for code in shown["skipped_by_reason"]
        },
    }


def progress_bar(broadcast: Broadcast) -> str:
    shown = selectors.progress(broadcast)
    return format_html(
        '<div class="notif-progress" title="{}"><div class="notif-progress-bar" '
        'style="width: {}%"></div></div> <span class="notif-progress-text">{}%</span>',
        _("%(sent)s sent, %(failed)s failed, %(skipped)s skipped of %(planned)s planned") % shown,
        shown["percent"],
        shown["percent"],
    )


# History keeps what an operator configures; state and progress belong to the state machine
# and the senders, and a revert must never move them.
reversion.register(
    Broadcast,
    fields=[
        "name",
        "template",
        "segment",
        "kind",
        "timezone",
        "send_at",
        "cron",
        "birthday_hour",
        "frequency_cap",
        "frequency_window",
        "quiet_start",
        "quiet_end",
        "rate_limit",
        "batch_size",
        "pause_after_errors",
    ],
)


@admin.register(Broadcast)
class BroadcastAdmin(ServiceErrorsMixin, TransitionAdminMixin, CompareVersionAdmin):
    form = BroadcastForm
    transition_buttons = BROADCAST_BUTTONS
    change_form_template = "admin/notifications/broadcast/change_form.html"
    list_display = ["name", "kind", "state", "channel", "progress", "started_at", "finished_at"]
    list_filter = ["state", "kind", "template__channel"]
    search_fields = ["name", "template__code", "segment__code"]
    list_select_related = ["template"]
    raw_id_fields = ["parent"]
    readonly_fields = [
        "state",
        "state_reason",
        "progress",
        "counters",
        "parent",
        "occurrence",
        "window_start",
        "last_occurrence",
        "started_at",
        "planned_at",
        "finished_at",
        "created_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "template", "segment"]}),
        (
            _("When"),
            {
                "fields": ["kind", "timezone", "send_at", "cron", "birthday_hour"],
                "description": _(
                    "Once: at the start time (or Send now). Recurring: a crontab in the "
                    "timezone above. Birthday: at the given hour in each customer's own "
                    "timezone, on their birthday (29 February: 28 February in other years)."
                ),
            },
        ),
        (
            _("Policy"),
            {
                "fields": [
                    "frequency_cap",
                    "frequency_window",
                    "quiet_start",
                    "quiet_end",
                    "rate_limit",
                    "batch_size",
                    "pause_after_errors",
                ]
            },
        ),
        (
            _("Progress"),
            {
                "fields": [
                    "state",
                    "state_reason",
                    "counters",
                    "started_at",
                    "planned_at",
                    "finished_at",
                ]
            },
        ),
        (
            _("Occurrence"),
            {
                "fields": ["parent", "occurrence", "window_start", "last_occurrence", "created_at"],
                "classes": ["collapse"],
            },
        ),
    ]

    @admin.display(description=_("channel"), ordering="template__channel")
    def channel(self, obj: Broadcast) -> str:
        return obj.template.get_channel_display()

    @admin.display(description=_("progress"))
    def progress(self, obj: Broadcast) -> str:
        return progress_bar(obj)

    @admin.display(description=_("skipped, and why"))
    def counters(self, obj: Broadcast) -> str:
        """What was skipped and why, in words (the live progress above has the totals)."""
        reasons = labelled_progress(obj)["skipped_labels"]
        if not reasons:
            return "-"
        return format_html(
            '<table class="gambit-table notif-counters">{}</table>',
            format_html_join(
                "",
                "<tr><th>{}</th><td>{}</td></tr>",
                ((reasons[code], count) for code, count in obj.skipped_by_reason.items()),
            ),
        )

    def get_readonly_fields(self, request: http.HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.state not in EDITABLE_STATES:
            fields += [name for name in BroadcastForm.Meta.fields if name not in fields]
        return fields

    def confirmation_details(self, request: http.HttpRequest, obj: Broadcast, name: str) -> str:
        return audience_html(obj) if name == "start" else ""

    def get_urls(self) -> list[Any]:
        return [
            path(
                "audience/",
                self.admin_site.admin_view(lambda request: audience_view(self, request)),
                name="notifications_broadcast_audience",
            ),
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="notifications_broadcast_progress",
            ),
            *super().get_urls(),
        ]

    def progress_view(self, request: http.HttpRequest, object_id: str) -> http.JsonResponse:
        broadcast = get_object_or_404(Broadcast, pk=object_id)
        if not self.has_view_permission(request, broadcast):
            raise http.Http404
        return http.JsonResponse(labelled_progress(broadcast))

    def change_view(
        self,
        request: http.HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> http.HttpResponse:
        context = extra_context or {}
        context["progress_url"] = reverse(
            "admin:notifications_broadcast_progress", args=[object_id]
        )
        return super().change_view(request, object_id, form_url, extra_context=context)

"""Webhook calls (the call_webhook step's outbox): what was sent, what is waiting for a retry,
and the dead letters, which an operator can send again once the receiver is fixed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from activities.models import WebhookCall
from activities.services.webhooks import resend_webhook_calls
from core.admin.base import ReadOnlyAdmin

from .runs import mapping_table


@admin.register(WebhookCall)
class WebhookCallAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "url",
        "state",
        "reason",
        "attempts",
        "response_status",
        "error_summary",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["state", "reason", "created_at"]
    search_fields = ["idempotency_key", "url"]
    date_hierarchy = "created_at"
    actions = ["resend"]
    fields = [
        "run_link",
        "url",
        "idempotency_key",
        "body_table",
        "state",
        "reason",
        "attempts",
        "response_status",
        "last_error",
        "next_attempt_at",
        "created_at",
        "sent_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("run"))
    def run_link(self, obj: WebhookCall) -> str:
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:activities_chainrun_change", args=[obj.run_id]),
            obj.run_id,
        )

    @admin.display(description=_("body"))
    def body_table(self, obj: WebhookCall) -> str:
        return mapping_table(obj.body)

    @admin.display(description=_("last error"))
    def error_summary(self, obj: WebhookCall) -> str:
        return Truncator(obj.last_error).chars(80) or "-"

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("activities.resend_webhookcall")

    @admin.action(permissions=["resend"], description=_("Send the selected failed calls again"))
    def resend(self, request: HttpRequest, queryset: Any) -> None:
        count = resend_webhook_calls(call_ids=queryset.values_list("pk", flat=True))
        if not count:
            self.message_user(
                request, gettext("None of the selected calls has failed."), messages.WARNING
            )
            return
        self.message_user(
            request,
            ngettext(
                "%(count)d failed call will be sent again.",
                "%(count)d failed calls will be sent again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

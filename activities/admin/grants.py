"""Grants: what customers received; their own state machine."""

from collections.abc import Iterator
from typing import Any

from django import http
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from activities.models import Grant
from activities.services import coupon_exports
from activities.services.grants import revoke_grant
from core.admin.base import ReadOnlyAdmin, ReasonForm, TransitionAdminMixin, TransitionButton
from core.timezones import describe

GRANT_BUTTONS = {
    "revoke": TransitionButton(
        run=lambda grant, user, data: revoke_grant(grant=grant, by=user, reason=data["reason"]),
        label=_("Revoke"),
        done=_("The grant was revoked."),
        help_text=_("The customer loses what is left of it; the stock is not returned."),
        destructive=True,
        form=ReasonForm,
    )
}


@admin.register(Grant)
class GrantAdmin(TransitionAdminMixin, ReadOnlyAdmin):
    transition_buttons = GRANT_BUTTONS
    list_display = [
        "id",
        "benefit",
        "customer",
        "activity",
        "code",
        "quantity",
        "remaining",
        "state",
        "valid_until_local",
        "created_at",
    ]
    actions = ["export_grants_csv", "export_redemptions_csv"]
    list_filter = ["state", "activity", "benefit__kind", "created_at"]
    search_fields = [
        "customer__external_id",
        "benefit__code",
        "activity__code",
        "idempotency_key",
        "=code",
        "=order",
    ]
    list_select_related = ["benefit", "customer", "activity"]
    date_hierarchy = "created_at"
    fields = [
        "benefit",
        "activity",
        "customer",
        "run",
        "quantity",
        "remaining",
        "value",
        "state",
        "code",
        "valid_from_local",
        "valid_until_local",
        "order",
        "redeemed_at",
        "idempotency_key",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    # Validity is a local day of the activity's zone; shown in that zone, named.
    @admin.display(description=_("valid from"), ordering="valid_from")
    def valid_from_local(self, grant: Grant) -> str:
        return describe(grant.valid_from, grant.activity.timezone) or "-"

    @admin.display(description=_("valid until"), ordering="valid_until")
    def valid_until_local(self, grant: Grant) -> str:
        return describe(grant.valid_until, grant.activity.timezone) or "-"

    @admin.action(description=_("Export selected grants to CSV"))
    def export_grants_csv(
        self, request: http.HttpRequest, queryset: Any
    ) -> http.StreamingHttpResponse:
        return _csv("grants.csv", coupon_exports.export_grants_csv(grants=queryset))

    @admin.action(description=_("Export the coupon redemptions of the selected grants to CSV"))
    def export_redemptions_csv(
        self, request: http.HttpRequest, queryset: Any
    ) -> http.StreamingHttpResponse:
        return _csv("redemptions.csv", coupon_exports.export_redemptions_csv(grants=queryset))


def _csv(filename: str, lines: Iterator[str]) -> http.StreamingHttpResponse:
    response = http.StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

"""Grants: what customers received; their own state machine."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from activities.models import Grant
from activities.services.grants import revoke_grant
from core.admin.base import ReadOnlyAdmin, ReasonForm, TransitionAdminMixin, TransitionButton

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
        "quantity",
        "remaining",
        "state",
        "created_at",
    ]
    list_filter = ["state", "activity", "benefit__kind", "created_at"]
    search_fields = ["customer__external_id", "benefit__code", "activity__code", "idempotency_key"]
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
        "idempotency_key",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

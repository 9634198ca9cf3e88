"""Deliveries in the back-office: read only, found by customer, address or source."""

from __future__ import annotations

from django.contrib import admin

from core.admin.base import ReadOnlyAdmin
from notifications.models import Delivery


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "broadcast",
        "customer",
        "channel",
        "status",
        "reason",
        "attempts",
        "sent_at",
    ]
    list_filter = ["status", "channel", "reason"]
    search_fields = ["=customer__external_id", "=address", "=source_key"]
    list_select_related = ["broadcast", "customer"]
    raw_id_fields = ["broadcast", "customer"]
    show_full_result_count = False
    ordering = ["-id"]

"""Channels: the event types chains listen to."""

from django.contrib import admin
from reversion_compare.admin import CompareVersionAdmin

from activities.models import Channel


@admin.register(Channel)
class ChannelAdmin(CompareVersionAdmin):
    list_display = ["code", "name", "created_at"]
    search_fields = ["code", "name", "description"]
    list_filter = ["created_at"]
    fields = ["code", "name", "description", "payload_schema", "created_at"]
    readonly_fields = ["created_at"]

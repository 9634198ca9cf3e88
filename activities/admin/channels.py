"""Channels: the event types chains listen to."""

from typing import Any

from django import forms
from django.contrib import admin
from reversion_compare.admin import CompareVersionAdmin

from activities.models import Channel
from activities.services.payload_schemas import schema_problems


class ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = ["code", "name", "description", "payload_schema"]

    def clean_payload_schema(self) -> Any:
        schema = self.cleaned_data.get("payload_schema")
        if problems := schema_problems(schema):
            raise forms.ValidationError(problems, code="invalid_schema")
        return schema


@admin.register(Channel)
class ChannelAdmin(CompareVersionAdmin):
    form = ChannelForm
    list_display = ["code", "name", "internal", "created_at"]
    search_fields = ["code", "name", "description"]
    list_filter = ["created_at"]
    fields = ["code", "name", "description", "payload_schema", "internal", "created_at"]
    readonly_fields = ["internal", "created_at"]

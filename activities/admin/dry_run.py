"""The dry-run form: which channel, which customer, which payload."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from activities.models import Activity, Channel
from activities.services.payload_schemas import payload_errors


class DryRunForm(forms.Form):
    channel = forms.ModelChoiceField(label=_("channel"), queryset=Channel.objects.none())
    customer = forms.CharField(
        label=_("customer external id"),
        max_length=128,
        help_text=_("An existing customer, or a new id to try a first-time customer."),
    )
    payload = forms.JSONField(
        label=_("event payload"),
        initial=dict,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "vLargeTextField gambit-mono"}),
        help_text=_('What the storefront would send, e.g. {"score": 80}.'),
    )

    def __init__(self, *args: Any, activity: Activity, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = Channel.objects.filter(
            chains__template=activity.template
        ).order_by("code")

    def clean_payload(self) -> dict[str, Any]:
        payload = self.cleaned_data.get("payload") or {}
        if not isinstance(payload, dict):
            raise forms.ValidationError(_("The payload must be an object."), code="invalid")
        return payload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        channel, payload = cleaned.get("channel"), cleaned.get("payload")
        if channel is not None and payload is not None and channel.payload_schema:
            for error in payload_errors(schema=channel.payload_schema, payload=payload):
                self.add_error("payload", f"{error['path']}: {error['message']}")
        return cleaned

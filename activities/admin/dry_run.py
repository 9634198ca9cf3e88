"""The dry-run form: which channel, which customer, which payload, and for an activity built
from a gameplay, the customer's starting state (its `dry_run_state` fields)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from activities.definitions.gameplays.dry_run import gameplay_of
from activities.engine import registry
from activities.models import Activity, BenefitKind, Channel, RunOutcome
from activities.reason_labels import reason_label
from activities.services.payload_schemas import payload_errors

from .gameplay_fields import add_parameter_fields, parameters_from
from .runs import mapping_table, trace_table


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
        gameplay = gameplay_of(activity)
        self.state_schema = (
            gameplay.dry_run_state.schema if gameplay and gameplay.dry_run_state else None
        )
        if self.state_schema is not None:
            add_parameter_fields(self, self.state_schema, defaults={}, benefits=[])

    def state(self) -> dict[str, Any]:
        """The starting state asked for; {} for none."""
        if self.state_schema is None:
            return {}
        state = parameters_from(self.cleaned_data, self.state_schema)
        return {name: value for name, value in state.items() if value not in (None, 0, "")}

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


def outcome_context(outcome: Any) -> dict[str, Any]:
    """What the dry-run page shows of an outcome, in the operator's words: labels for the
    outcome, the reason, benefit kinds and processors, and tables rather than raw mappings."""
    if outcome is None:
        return {}
    kinds = dict(BenefitKind.choices)
    processors = dict(registry.choices())
    return {
        "outcome_label": dict(RunOutcome.choices).get(outcome.outcome, ""),
        "reason_text": reason_label(outcome.reason) if outcome.reason else "",
        "trace": trace_table(outcome.steps),
        "result": mapping_table(outcome.result),
        "grant_rows": [
            {**grant, "kind_label": kinds.get(grant.get("kind"), grant.get("kind"))}
            for grant in outcome.grants
        ],
        "send_rows": [
            (processors.get(send["processor"], send["processor"]), mapping_table(send["config"]))
            for send in outcome.sends
        ],
        "emitted_rows": [
            (event["channel"], mapping_table(event["payload"])) for event in outcome.emitted
        ],
    }

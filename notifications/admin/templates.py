"""Templates in the back-office: edit, preview for a customer, send one test message."""

from __future__ import annotations

from typing import Any

from django import forms, http
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _
from reversion_compare.admin import CompareVersionAdmin

from notifications.models import NotificationTemplate
from notifications.services import templates as template_services
from segments.models import Customer


class PreviewForm(forms.Form):
    customer = forms.CharField(
        label=_("Customer (external id)"), max_length=128, help_text=_("Render for this customer.")
    )
    address = forms.CharField(
        label=_("Send the test to"),
        max_length=254,
        required=False,
        help_text=_("Leave empty to use the customer's own address for this channel."),
    )
    event = forms.JSONField(
        label=_("Sample event payload"),
        required=False,
        help_text=_("For templates used by a chain's notify step: values for {{ event.* }}."),
    )

    def clean_customer(self) -> Customer:
        external_id = self.cleaned_data["customer"].strip()
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is None:
            raise forms.ValidationError(_("No customer has this external id."))
        return customer

    def clean_event(self) -> dict[str, Any] | None:
        event = self.cleaned_data.get("event")
        if event is not None and not isinstance(event, dict):
            raise forms.ValidationError(_("The sample payload must be a JSON object."))
        return event


class NotificationTemplateForm(forms.ModelForm):
    class Meta:
        model = NotificationTemplate
        fields = [
            "code",
            "name",
            "channel",
            "subject",
            "body",
            "fields",
            "provider_template_id",
            "link",
        ]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        try:
            template_services.check_template_edit(
                template_id=self.instance.pk, changed_fields=self.changed_data
            )
        except template_services.TemplateFrozen as frozen:
            for problem in frozen.details:
                self.add_error(problem["path"] or None, problem["message"])
        return cleaned


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(CompareVersionAdmin):
    form = NotificationTemplateForm
    list_display = ["code", "name", "channel", "updated_at"]
    list_filter = ["channel"]
    search_fields = ["code", "name", "subject", "body"]
    readonly_fields = ["created_at", "updated_at"]
    change_form_template = "admin/notifications/notificationtemplate/change_form.html"
    fieldsets = [
        (None, {"fields": ["code", "name", "channel"]}),
        (_("Content"), {"fields": ["subject", "body", "fields"]}),
        (_("Provider"), {"fields": ["provider_template_id", "link"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="notifications_notificationtemplate_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: http.HttpRequest, object_id: str) -> http.HttpResponse:
        template = get_object_or_404(NotificationTemplate, pk=object_id)
        if not self.has_view_permission(request, template):
            raise http.Http404
        form = PreviewForm(request.POST or None)
        shown = None
        if request.method == "POST" and form.is_valid():
            customer = form.cleaned_data["customer"]
            event = form.cleaned_data.get("event")
            shown = template_services.preview(template=template, customer=customer, event=event)
            if "_send_test" in request.POST and self.has_change_permission(request, template):
                result = template_services.send_test_message(
                    template=template,
                    customer=customer,
                    address=form.cleaned_data["address"].strip(),
                    event=event,
                )
                if result.ok:
                    self.message_user(request, _("Test message sent."), messages.SUCCESS)
                else:
                    self.message_user(
                        request,
                        _("The test message was not sent: %(detail)s") % {"detail": result.detail},
                        messages.ERROR,
                    )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "title": _("Preview %(name)s") % {"name": template.name},
            "form": form,
            "shown": shown,
            "can_send": self.has_change_permission(request, template),
        }
        return TemplateResponse(
            request, "admin/notifications/notificationtemplate/preview.html", context
        )

"""Storefront API keys: hashed; a new key is shown once, then only its prefix."""

from typing import Any

from django import forms, http
from django.contrib import admin, messages
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.admin import APIKeyModelAdmin

from core.models import ApiScope, StorefrontKey


class StorefrontKeyForm(forms.ModelForm):
    name = forms.CharField(
        label=capfirst(_("name")),
        max_length=50,
        help_text=_("Which storefront client uses this key; it cannot be changed once revoked."),
    )
    expiry_date = forms.DateTimeField(
        label=capfirst(_("expires")),
        required=False,
        help_text=_("After this time clients can no longer use the key."),
        widget=admin.widgets.AdminSplitDateTime,
    )
    revoked = forms.BooleanField(
        label=capfirst(_("revoked")),
        required=False,
        help_text=_("A revoked key is refused from now on; revoking cannot be undone."),
    )
    scopes = forms.MultipleChoiceField(
        label=capfirst(_("scopes")),
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("A key can do only what is ticked here."),
    )

    class Meta:
        model = StorefrontKey
        fields = ["name", "scopes", "expiry_date", "revoked"]


@admin.register(StorefrontKey)
class StorefrontKeyAdmin(APIKeyModelAdmin):
    form = StorefrontKeyForm
    list_display = ["key_prefix", "key_name", "scope_list", "created_at", "expires", "is_revoked"]
    list_filter = ["revoked", "created"]
    search_fields = ["name", "prefix"]

    def get_readonly_fields(self, request: http.HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None and obj.revoked:
            return ("key_prefix", "name", "revoked", "expiry_date")
        return ("key_prefix",)

    def get_fields(self, request: http.HttpRequest, obj: Any = None) -> list[str]:
        return ["key_prefix", "name", "scopes", "expiry_date", "revoked"]

    @admin.display(description=_("name"), ordering="name")
    def key_name(self, obj: StorefrontKey) -> str:
        return obj.name

    @admin.display(description=_("key prefix"), ordering="prefix")
    def key_prefix(self, obj: StorefrontKey) -> str:
        return obj.prefix or "-"

    @admin.display(description=_("created at"), ordering="created")
    def created_at(self, obj: StorefrontKey) -> Any:
        return obj.created

    @admin.display(description=_("expires"), ordering="expiry_date")
    def expires(self, obj: StorefrontKey) -> Any:
        return obj.expiry_date or "-"

    @admin.display(description=_("revoked"), boolean=True, ordering="revoked")
    def is_revoked(self, obj: StorefrontKey) -> bool:
        return obj.revoked

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: StorefrontKey) -> str:
        labels = dict(ApiScope.choices)
        return ", ".join(str(labels.get(scope, scope)) for scope in obj.scopes)

    def save_model(
        self, request: http.HttpRequest, obj: StorefrontKey, form: Any = None, change: bool = False
    ) -> None:
        if change:
            obj.save()
            return
        key = StorefrontKey.objects.assign_key(obj)
        obj.save()
        messages.warning(
            request,
            _(
                "The API key for %(name)s is: %(key)s. Store it somewhere safe now: "
                "it is shown only this once."
            )
            % {"name": obj.name, "key": key},
        )

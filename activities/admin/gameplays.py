"""New activity from a gameplay: the gallery, then one form with the gameplay's parameters,
the window, zone, audience and the activity's benefits. Saving goes through
`create_from_gameplay`, which builds the template, chains and steps and imports them."""

from __future__ import annotations

from typing import Any

from django import forms, http
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.forms import formset_factory
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from activities.definitions import gameplays
from activities.definitions.gameplays.base import Gameplay
from activities.models import BenefitKind
from activities.models.template import code_validator
from core.errors import InvalidConfiguration
from core.timezones import timezone_choices
from segments.models import Segment

from .gameplay_fields import add_parameter_fields, benefit_choices, field_for, parameters_from

WALL = "%Y-%m-%dT%H:%M"
ACTIVITY_FIELDS = ("code", "name", "timezone", "starts_at", "ends_at", "segment")


class GameplayActivityForm(forms.Form):
    code = forms.CharField(
        label=_("code"),
        max_length=100,
        validators=[code_validator],
        help_text=_("Unique; lower-case letters, digits and hyphens."),
    )
    name = forms.CharField(label=_("name"), max_length=200)
    timezone = forms.ChoiceField(label=_("timezone"), initial="Asia/Shanghai")
    starts_at = forms.DateTimeField(
        label=_("starts at"),
        required=False,
        input_formats=[WALL, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=WALL),
        help_text=_("Local time in the activity's timezone."),
    )
    ends_at = forms.DateTimeField(
        label=_("ends at"),
        required=False,
        input_formats=[WALL, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=WALL),
    )
    segment = forms.ModelChoiceField(
        label=_("audience"),
        queryset=Segment.objects.order_by("code"),
        to_field_name="code",
        required=False,
        empty_label=_("everyone"),
    )

    def __init__(
        self, *args: Any, gameplay: Gameplay, benefits: list[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.gameplay = gameplay
        zone = self.fields["timezone"]
        assert isinstance(zone, forms.ChoiceField)
        zone.choices = timezone_choices()
        self.layout = add_parameter_fields(
            self, gameplay.parameters, defaults=gameplay.defaults(), benefits=benefits
        )

    def activity_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "code": data["code"],
            "name": data["name"],
            "timezone": data["timezone"],
            # Wall times: the form's timezone is UTC, so the naive value is what was typed.
            "starts_at": _wall(data.get("starts_at")),
            "ends_at": _wall(data.get("ends_at")),
            "segment": data["segment"].code if data.get("segment") else None,
        }


def _wall(value: Any) -> str | None:
    return value.replace(tzinfo=None).isoformat(timespec="seconds") if value else None


class BenefitRowForm(forms.Form):
    # A row without a code is dropped, whatever else it says.
    code = forms.CharField(
        label=_("code"), max_length=100, validators=[code_validator], required=False
    )
    name = forms.CharField(label=_("name"), max_length=200, required=False)
    kind = forms.ChoiceField(label=_("kind"), choices=BenefitKind.choices)
    value = forms.DecimalField(
        label=_("value per unit"), max_digits=12, decimal_places=2, required=False
    )
    stock = forms.IntegerField(label=_("stock"), min_value=0, required=False)
    per_customer_limit = forms.IntegerField(
        label=_("per customer limit"), min_value=1, required=False
    )

    def row(self) -> dict[str, Any]:
        data = self.cleaned_data
        row: dict[str, Any] = {"code": data["code"], "kind": data["kind"]}
        if data.get("name"):
            row["name"] = data["name"]
        if data.get("value") is not None:
            row["value"] = str(data["value"])
        for key in ("stock", "per_customer_limit"):
            if data.get(key) is not None:
                row[key] = data[key]
        return row


BenefitFormSet = formset_factory(BenefitRowForm, extra=3)


def _posted_benefits(data: Any) -> list[dict[str, Any]]:
    """The benefit rows as posted, before validation: what the benefit selects offer."""
    rows = []
    for index in range(int(data.get("benefits-TOTAL_FORMS") or 0)):
        code = (data.get(f"benefits-{index}-code") or "").strip()
        rows.append({"code": code, "name": (data.get(f"benefits-{index}-name") or "").strip()})
    return rows


def _place_errors(
    error: InvalidConfiguration, form: GameplayActivityForm, formset: Any, kept: list[int]
) -> None:
    """Each problem on the field it concerns; the rest above the form."""
    for detail in error.details or []:
        path, message = detail.get("path", ""), detail["message"]
        if path.startswith("parameters."):
            field = field_for(path.removeprefix("parameters."), form, form.gameplay.parameters)
            form.add_error(field, message)
        elif path in ACTIVITY_FIELDS:
            form.add_error(path, message)
        elif path.startswith("benefits[") and "]." in path:
            index, _dot, name = path.removeprefix("benefits[").partition("].")
            row = formset.forms[kept[int(index)]] if int(index) < len(kept) else None
            if row is not None and name in row.fields:
                row.add_error(name, message)
            else:
                form.add_error(None, message)
        else:
            form.add_error(None, message)


def gallery_view(admin: Any, request: http.HttpRequest) -> http.HttpResponse:
    if not admin.has_add_permission(request):
        raise PermissionDenied
    context = {
        **admin.admin_site.each_context(request),
        "opts": admin.model._meta,
        "title": _("New activity: pick a gameplay"),
        "gameplays": gameplays.all_gameplays(),
        "expert_url": reverse("admin:activities_activity_add") + "?expert=1",
    }
    return TemplateResponse(request, "admin/activities/activity/gameplay_gallery.html", context)


def gameplay_add_view(admin: Any, request: http.HttpRequest, code: str) -> http.HttpResponse:
    if not admin.has_add_permission(request):
        raise PermissionDenied
    gameplay = gameplays.get(code)
    if gameplay is None:
        raise http.Http404
    posted = request.method == "POST"
    rows = _posted_benefits(request.POST) if posted else gameplay.initial_benefits()
    form = GameplayActivityForm(
        request.POST if posted else None, gameplay=gameplay, benefits=benefit_choices(rows)
    )
    formset = BenefitFormSet(
        request.POST if posted else None, prefix="benefits", initial=gameplay.initial_benefits()
    )
    if posted and form.is_valid() and formset.is_valid():
        kept = [i for i, row in enumerate(formset.forms) if row.cleaned_data.get("code")]
        try:
            activity = gameplays.create_from_gameplay(
                gameplay_code=gameplay.code,
                parameters=parameters_from(form.cleaned_data, gameplay.parameters),
                activity={
                    **form.activity_fields(),
                    "benefits": [formset.forms[i].row() for i in kept],
                },
            )
        except InvalidConfiguration as error:
            _place_errors(error, form, formset, kept)
        else:
            admin.message_user(
                request,
                gettext("Activity %(code)s is created from the gameplay %(gameplay)s.")
                % {"code": activity.code, "gameplay": gameplay.name},
                messages.SUCCESS,
            )
            return redirect(reverse("admin:activities_activity_change", args=[activity.pk]))
    context = {
        **admin.admin_site.each_context(request),
        "opts": admin.model._meta,
        "title": _("New activity: %(gameplay)s") % {"gameplay": gameplay.name},
        "gameplay": gameplay,
        "form": form,
        "layout": [
            {"field": form[item]}
            if isinstance(item, str)
            else {"table": item, "rows": [[form[name] for name in row] for row in item.rows]}
            for item in form.layout
        ],
        "activity_fields": [form[name] for name in ACTIVITY_FIELDS],
        "formset": formset,
        "gallery_url": reverse("admin:activities_activity_gameplays"),
        "media": admin.media + form.media,
    }
    return TemplateResponse(request, "admin/activities/activity/gameplay_form.html", context)

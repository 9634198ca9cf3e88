"""Activity definition documents in the admin: export an activity as its YAML document, import
one from a file (how operators copy an activity from staging to production). Problems are
listed by their path in the document, nothing is written then."""

from __future__ import annotations

from typing import Any

from django import forms, http
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from activities.definitions import dump_definition, export_definition, import_definition, parse_text
from activities.definitions.loading import MAX_DOCUMENT_BYTES
from activities.models import Activity
from core.errors import GambitError


class DocumentForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Activity document"),
        help_text=gettext_lazy(
            "A YAML or JSON file exported from Gambit (this or another environment). The "
            "activity is created as a draft; its template and channels too when missing."
        ),
    )

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_DOCUMENT_BYTES:
            raise forms.ValidationError(
                _("The document is larger than %(size)d kB.") % {"size": MAX_DOCUMENT_BYTES // 1000}
            )
        return bytes(upload.read())


def export_view(model_admin: Any, request: http.HttpRequest, object_id: str) -> http.HttpResponse:
    activity = get_object_or_404(Activity, pk=object_id)
    if not model_admin.has_view_permission(request, activity):
        raise PermissionDenied
    text = dump_definition(export_definition(activity=activity), format="yaml")
    response = http.HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{activity.code}.yaml"'
    return response


def import_view(model_admin: Any, request: http.HttpRequest) -> http.HttpResponse:
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    form = DocumentForm(request.POST or None, request.FILES or None)
    problems: list[dict[str, str]] = []
    if request.method == "POST" and form.is_valid():
        try:
            activity = import_definition(document=parse_text(form.cleaned_data["file"]))
        except GambitError as error:
            problems = [
                {"path": d.get("path") or "", "message": d.get("message") or ""}
                for d in error.details or []
            ] or [{"path": "", "message": error.message}]
        else:
            model_admin.message_user(
                request,
                _("Activity %(code)s is imported as a draft.") % {"code": activity.code},
                messages.SUCCESS,
            )
            return redirect("admin:activities_activity_change", activity.pk)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Activity._meta,
        "title": _("Import an activity document"),
        "form": form,
        "problems": problems,
    }
    return TemplateResponse(request, "admin/activities/activity/import.html", context)

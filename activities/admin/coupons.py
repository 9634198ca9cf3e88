"""Coupons in the back-office: a benefit's fixed validity as days in the activity's zone,
issuing a benefit to a segment (request, see what it takes, a second person approves, live
progress) and uploading a pool of codes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms, http
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from activities.models import (
    Activity,
    ActivityState,
    Benefit,
    BenefitIssue,
    BenefitKind,
    CodeSource,
    IssueState,
)
from activities.services import coupon_codes, coupon_issue
from core.admin.base import ServiceErrorsMixin, TransitionAdminMixin, TransitionButton
from core.errors import GambitError
from core.timezones import UnknownTimezone, get_zone

ISSUABLE = {"kind__in": [BenefitKind.COUPON, BenefitKind.PRIZE, BenefitKind.CASH]}
OPEN_ACTIVITY = {"activity__state__in": [ActivityState.SCHEDULED, ActivityState.RUNNING]}


def progress_text(issue: BenefitIssue) -> str:
    return gettext("%(issued)s issued, %(skipped)s not issued of %(audience)s") % {
        "issued": issue.issued,
        "skipped": issue.skipped,
        "audience": issue.audience,
    }


ISSUE_BUTTONS = {
    "approve": TransitionButton(
        run=lambda issue, user, data: coupon_issue.approve_issue(issue=issue, by=user),
        label=_("Approve and issue"),
        done=_("Approved; issuing has started."),
        help_text=_("Gives one unit to every customer of the segment, as far as stock reaches."),
        destructive=True,
    ),
    "cancel": TransitionButton(
        run=lambda issue, user, data: coupon_issue.cancel_issue(issue=issue, by=user),
        label=_("Cancel"),
        done=_("The issue was cancelled."),
    ),
}


class BenefitChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Benefit) -> str:
        return f"{obj.activity.name} — {obj.name or obj.code} ({obj.get_kind_display()})"


class IssueForm(forms.ModelForm):
    benefit = BenefitChoiceField(
        label=_("benefit"),
        queryset=Benefit.objects.filter(**ISSUABLE, **OPEN_ACTIVITY).select_related("activity"),
        help_text=_("A coupon, prize or cash benefit of a scheduled or running activity."),
    )

    class Meta:
        model = BenefitIssue
        fields = ["benefit", "segment", "notification_template"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("benefit") is not None:
            problems = coupon_issue.issue_refusal(
                benefit=data["benefit"], notification_template=data.get("notification_template")
            )
            for field, message in problems.items():
                self.add_error(field, message)
        return data


class PoolUploadForm(forms.Form):
    benefit = BenefitChoiceField(
        label=_("benefit"),
        queryset=Benefit.objects.filter(
            kind=BenefitKind.COUPON, code_source=CodeSource.POOL
        ).select_related("activity"),
        help_text=_("A coupon benefit whose codes come from a pool."),
    )
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("One code per line in the first column; a header line is skipped."),
    )


class BenefitForm(forms.ModelForm):
    """A benefit row of the activity page. Fixed validity is typed and shown as days in the
    activity's zone, which the column names: valid from the start of the first day, until the
    local midnight that ends the last one. The rows are stored as instants; when the activity's
    zone changes, the days stay and the instants follow the new zone."""

    valid_from = forms.DateField(required=False, widget=AdminDateWidget)
    valid_until = forms.DateField(required=False, widget=AdminDateWidget)

    def __init__(
        self, *args: Any, zone_name: str = "", stored_zone_name: str = "", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.zone_name = zone_name
        self.zone_moved = bool(stored_zone_name) and stored_zone_name != zone_name
        named = {"zone": zone_name}
        self.fields["valid_from"].label = gettext("first valid day (%(zone)s)") % named
        self.fields["valid_from"].help_text = (
            gettext(
                "Empty means from issue. Usable from 00:00 of this day in %(zone)s, the "
                "activity's time zone."
            )
            % named
        )
        self.fields["valid_until"].label = gettext("last valid day (%(zone)s)") % named
        self.fields["valid_until"].help_text = (
            gettext(
                "Usable through this day: it ends at the midnight after it in %(zone)s, the "
                "activity's time zone. With valid days too, the earlier end wins."
            )
            % named
        )
        if self.instance.pk and stored_zone_name:
            first, last = coupon_codes.first_and_last_day(
                valid_from=self.instance.valid_from,
                valid_until=self.instance.valid_until,
                timezone_name=stored_zone_name,
            )
            self.initial.update(valid_from=first, valid_until=last)

    def has_changed(self) -> bool:
        fixed = self.instance.valid_from is not None or self.instance.valid_until is not None
        return super().has_changed() or (self.zone_moved and fixed)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.pop("valid_from", None), data.pop("valid_until", None)
        if first is not None and last is not None and last < first:
            self.add_error("valid_until", gettext("The last valid day is before the first."))
            return data
        try:
            get_zone(self.zone_name)
        except UnknownTimezone:
            # The activity form reports the zone; nothing is saved until it is fixed.
            return data
        data["valid_from"] = (
            coupon_codes.local_midnight(first, self.zone_name) if first is not None else None
        )
        data["valid_until"] = (
            coupon_codes.local_midnight(last + dt.timedelta(days=1), self.zone_name)
            if last is not None
            else None
        )
        return data


class BenefitFormSet(BaseInlineFormSet):
    """Hands each benefit row the zone the activity will have after this save, and the zone
    its stored instants were made in."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored_zone_name = (
            Activity.objects.filter(pk=self.instance.pk).values_list("timezone", flat=True).first()
            if self.instance.pk
            else None
        ) or self.instance.timezone

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {
            **super().get_form_kwargs(index),
            "zone_name": self.instance.timezone,
            "stored_zone_name": self.stored_zone_name,
        }


@admin.register(BenefitIssue)
class BenefitIssueAdmin(ServiceErrorsMixin, TransitionAdminMixin, admin.ModelAdmin):
    form = IssueForm
    transition_buttons = ISSUE_BUTTONS
    change_form_template = "admin/activities/benefitissue/change_form.html"
    change_list_template = "admin/activities/benefitissue/change_list.html"
    list_display = ["__str__", "state", "progress", "requested_by", "approved_by", "created_at"]
    list_filter = ["state", "activity"]
    list_select_related = ["benefit__activity", "segment", "requested_by", "approved_by"]
    readonly_fields = [
        "state",
        "plan",
        "progress",
        "requested_by",
        "approved_by",
        "bypass",
        "created_at",
        "finished_at",
    ]

    def get_fieldsets(self, request: http.HttpRequest, obj: Any = None) -> list[Any]:
        if obj is None:
            return [(None, {"fields": ["benefit", "segment", "notification_template"]})]
        return [
            (None, {"fields": ["benefit", "segment", "notification_template"]}),
            (_("What it takes"), {"fields": ["plan"]}),
            (
                _("Progress"),
                {
                    "fields": [
                        "state",
                        "progress",
                        "requested_by",
                        "approved_by",
                        "bypass",
                        "created_at",
                        "finished_at",
                    ]
                },
            ),
        ]

    def get_readonly_fields(self, request: http.HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return [*self.readonly_fields, "benefit", "segment", "notification_template"]

    def has_delete_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: http.HttpRequest, obj: Any, form: Any, change: bool):
        if change:
            return
        created = coupon_issue.request_issue(
            benefit=form.cleaned_data["benefit"],
            segment=form.cleaned_data["segment"],
            notification_template=form.cleaned_data.get("notification_template"),
            by=request.user,
        )
        obj.pk = created.pk

    def transition_refusal(self, request: http.HttpRequest, obj: Any, name: str) -> str | None:
        if name == "approve" and obj.requested_by_id == request.user.pk:
            return gettext("Four eyes: you requested this issue, so someone else must approve it.")
        return None

    @admin.display(description=_("what it takes"))
    def plan(self, obj: BenefitIssue) -> str:
        if obj.state != IssueState.REQUESTED:
            return "-"
        plan = coupon_issue.plan_issue(benefit=obj.benefit, segment=obj.segment)
        lines = [
            gettext("%(audience)s customers in the segment now.") % {"audience": plan.audience},
            gettext("At most %(count)s will get one.") % {"count": plan.will_issue},
        ]
        if plan.stock_remaining is not None:
            lines.append(gettext("Stock left: %(stock)s.") % {"stock": plan.stock_remaining})
        if plan.budget_needed is not None:
            lines.append(
                gettext("Budget it takes: %(needed)s of %(left)s left.")
                % {"needed": plan.budget_needed, "left": plan.budget_remaining}
            )
        return format_html("<p class='issue-plan'>{}</p>", " ".join(lines))

    @admin.display(description=_("progress"))
    def progress(self, obj: BenefitIssue) -> str:
        return progress_text(obj)

    # --- live progress and the pool upload --------------------------------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "upload-codes/", wrap(self.upload_codes_view), name="activities_benefit_pool_upload"
            ),
            path(
                "<path:object_id>/progress/",
                wrap(self.progress_view),
                name="activities_benefitissue_progress",
            ),
            *super().get_urls(),
        ]

    def progress_view(self, request: http.HttpRequest, object_id: str) -> http.JsonResponse:
        issue = get_object_or_404(BenefitIssue, pk=object_id)
        if not self.has_view_permission(request, issue):
            raise http.Http404
        return http.JsonResponse(
            {
                "state": issue.state,
                "state_label": issue.get_state_display(),
                "issued": issue.issued,
                "skipped": issue.skipped,
                "audience": issue.audience,
                "text": progress_text(issue),
            }
        )

    def change_view(
        self,
        request: http.HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> http.HttpResponse:
        context = extra_context or {}
        context["progress_url"] = reverse(
            "admin:activities_benefitissue_progress", args=[object_id]
        )
        return super().change_view(request, object_id, form_url, extra_context=context)

    def changelist_view(
        self, request: http.HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> http.HttpResponse:
        context = extra_context or {}
        context["upload_url"] = reverse("admin:activities_benefit_pool_upload")
        return super().changelist_view(request, extra_context=context)

    def upload_codes_view(self, request: http.HttpRequest) -> http.HttpResponse:
        if not request.user.has_perm("activities.change_benefit"):
            raise PermissionDenied
        form = PoolUploadForm(request.POST or None, request.FILES or None)
        rejected: list[tuple[int, str]] = []
        if request.method == "POST" and form.is_valid():
            try:
                result = coupon_codes.upload_pool(
                    benefit=form.cleaned_data["benefit"], data=form.cleaned_data["file"].read()
                )
            except GambitError as error:
                form.add_error("file", error.message)
            else:
                rejected = result.rejected
                self.message_user(
                    request,
                    gettext(
                        "%(added)s codes added to the pool, %(duplicates)s already known, "
                        "%(rejected)s refused."
                    )
                    % {
                        "added": result.added,
                        "duplicates": result.duplicates,
                        "rejected": len(result.rejected),
                    },
                    level=messages.WARNING if rejected else messages.SUCCESS,
                )
                if not rejected:
                    return redirect(reverse("admin:activities_benefitissue_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Upload coupon codes to a pool"),
            "form": form,
            "rejected": rejected[:200],
        }
        return TemplateResponse(request, "admin/activities/benefitissue/upload_codes.html", context)

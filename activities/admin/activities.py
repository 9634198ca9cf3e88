"""Activities: edit drafts, four-eyes approval, lifecycle buttons, dry-run, history."""

from __future__ import annotations

from typing import Any

from django import forms, http
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_fsm_log.models import StateLog
from reversion_compare.admin import CompareVersionAdmin

from activities import selectors_dashboard
from activities.definitions.gameplays.dry_run import dry_run_from_state
from activities.models import COUPON_TERMS, Activity, ActivityState, Benefit
from activities.services import approvals, configuration, lifecycle, scheduling
from core.admin.base import (
    ReasonForm,
    ServiceErrorsMixin,
    TransitionAdminMixin,
    TransitionButton,
    record_saved,
)
from core.timezones import LocalDateTimeField, LocalDateTimeFormMixin, describe

from . import gameplays
from .coupons import BenefitForm, BenefitFormSet
from .documents import export_view, import_view
from .dry_run import DryRunForm, outcome_context
from .figures import figures_view
from .history import bump_version
from .journeys import waiting_table
from .list_filters import ArchivedFilter


class ActivityForm(LocalDateTimeFormMixin, forms.ModelForm):
    starts_at = LocalDateTimeField(label=capfirst(_("starts at")), required=False)
    ends_at = LocalDateTimeField(label=capfirst(_("ends at")), required=False)

    class Meta:
        model = Activity
        fields = [
            "code",
            "name",
            "template",
            "segment",
            "timezone",
            "starts_at",
            "ends_at",
            "budget_total",
            "on_exhausted",
        ]


# What `configuration.update_activity` changes; the code is fixed once created.
UPDATABLE = (
    "name",
    "template",
    "timezone",
    "starts_at",
    "ends_at",
    "segment",
    "budget_total",
    "on_exhausted",
)


class BenefitInline(admin.TabularInline):
    model = Benefit
    form = BenefitForm
    formset = BenefitFormSet
    extra = 0
    fields = [
        "code",
        "name",
        "kind",
        "value",
        "stock_total",
        "stock_remaining",
        "per_customer_limit",
        *COUPON_TERMS,
    ]
    readonly_fields = ["stock_remaining"]


def _end(activity: Activity, user: Any, data: dict[str, Any]) -> None:
    lifecycle.end_activity(activity_id=activity.pk, reason=data.get("reason", ""), by=user)


ACTIVITY_BUTTONS = {
    "schedule": TransitionButton(
        run=lambda obj, user, data: lifecycle.schedule_activity(activity=obj, by=user),
        label=_("Schedule"),
        done=lambda activity: (
            (
                _("Activity %(code)s is running: its window was already open.")
                if activity.state == ActivityState.RUNNING
                else _("Activity %(code)s is scheduled.")
            )
            % {"code": activity.code}
        ),
        help_text=_("Plan the launch and the end; launches at once when the window is open."),
    ),
    "unschedule": TransitionButton(
        run=lambda obj, user, data: lifecycle.unschedule_activity(activity=obj, by=user),
        label=_("Back to draft"),
        done=_("Activity {obj.code} is a draft again."),
    ),
    "pause": TransitionButton(
        run=lambda obj, user, data: lifecycle.pause_activity(
            activity=obj, by=user, reason=data.get("reason", "")
        ),
        label=_("Pause"),
        done=_("Activity {obj.code} is paused."),
        help_text=_("Events are skipped until it resumes."),
        form=ReasonForm,
    ),
    "resume": TransitionButton(
        run=lambda obj, user, data: lifecycle.resume_activity(activity=obj, by=user),
        label=_("Resume"),
        done=_("Activity {obj.code} is running again."),
    ),
    "end": TransitionButton(
        run=_end,
        label=_("End"),
        done=_("Activity {obj.code} has ended."),
        help_text=_("Ends the activity for good; it cannot run again."),
        destructive=True,
        form=ReasonForm,
    ),
    "archive": TransitionButton(
        run=lambda obj, user, data: lifecycle.archive_activity(activity=obj, by=user),
        label=_("Archive"),
        done=_("Activity {obj.code} is archived."),
        help_text=_("Hides the activity from daily work; it cannot be edited or run again."),
        destructive=True,
    ),
}


@admin.register(Activity)
class ActivityAdmin(ServiceErrorsMixin, TransitionAdminMixin, CompareVersionAdmin):
    form = ActivityForm
    inlines = [BenefitInline]
    transition_buttons = ACTIVITY_BUTTONS
    list_display = ["code", "name", "template", "state_badge", "window", "budget_remaining"]
    list_filter = [ArchivedFilter, "state", "template", "segment", "starts_at"]
    search_fields = ["code", "name", "template__code", "template__name"]
    list_select_related = ["template"]
    date_hierarchy = "starts_at"
    readonly_fields = [
        "state",
        "status_reason",
        "approval",
        "planned",
        "budget_remaining",
        "config_version",
        "transition_history",
        "waiting_now",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["code", "name", "template", "segment"]}),
        (_("Window"), {"fields": ["timezone", "starts_at", "ends_at"]}),
        (_("Budget"), {"fields": ["budget_total", "budget_remaining", "on_exhausted"]}),
        (
            _("Status"),
            {
                "fields": [
                    "state",
                    "status_reason",
                    "approval",
                    "planned",
                    "config_version",
                    "transition_history",
                    "waiting_now",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]

    # --- columns and read-only fields --------------------------------------------------------

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, obj: Activity) -> str:
        return format_html(
            '<span class="gambit-state gambit-state-{}">{}</span>',
            obj.state,
            obj.get_state_display(),
        )

    @admin.display(description=_("window"), ordering="starts_at")
    def window(self, obj: Activity) -> str:
        if obj.starts_at is None or obj.ends_at is None:
            return "-"
        return format_html(
            "{}<br>{}", describe(obj.starts_at, obj.timezone), describe(obj.ends_at, obj.timezone)
        )

    @admin.display(description=_("why"))
    def status_reason(self, obj: Activity) -> str:
        return gettext(obj.state_reason) if obj.state_reason else "-"

    @admin.display(description=_("approval"))
    def approval(self, obj: Activity) -> str:
        if obj.pk is None:
            return "-"
        labels = {
            "editing": _("being edited"),
            "submitted": _("submitted, waiting for an approver"),
            "approved": _("approved"),
        }
        return str(labels[approvals.approval_status(obj).status])

    @admin.display(description=_("planned tasks"))
    def planned(self, obj: Activity) -> str:
        if obj.pk is None:
            return "-"
        tasks = scheduling.planned_tasks(activity_id=obj.pk)
        labels = {"launch": _("launch"), "end": _("end")}
        if not tasks:
            return "-"
        return format_html_join(
            "",
            "<div>{}: {}</div>",
            (
                (labels[kind], describe(task.clocked.clocked_time, obj.timezone))
                for kind, task in sorted(tasks.items())
            ),
        )

    @admin.display(description=_("transition history"))
    def transition_history(self, obj: Activity) -> str:
        if obj.pk is None:
            return "-"
        return history_table(
            StateLog.objects.for_(obj).select_related("by").order_by("-timestamp"), obj
        )

    @admin.display(description=_("customers waiting per step"))
    def waiting_now(self, obj: Activity) -> str:
        return waiting_table(obj) if obj.pk is not None else "-"

    # --- permissions: only drafts are edited -------------------------------------------------

    def has_change_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.state != ActivityState.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.state != ActivityState.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def transition_refusal(self, request: http.HttpRequest, obj: Any, name: str) -> str | None:
        if name == "schedule":
            return approvals.schedule_refusal(activity=obj)
        return None

    def get_readonly_fields(self, request: http.HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "code"] if obj is not None else fields

    def save_model(self, request: http.HttpRequest, obj: Activity, form: Any, change: bool) -> None:
        if not change:
            obj.budget_remaining = obj.budget_total  # a new activity has spent nothing
            super().save_model(request, obj, form, change)
            return
        configuration.update_activity(
            activity=obj,
            **{name: form.cleaned_data[name] for name in form.changed_data if name in UPDATABLE},
        )

    def delete_model(self, request: http.HttpRequest, obj: Activity) -> None:
        for benefit in obj.benefits.all():
            configuration.delete_benefit(benefit=benefit)
        super().delete_model(request, obj)

    def save_formset(
        self, request: http.HttpRequest, form: Any, formset: Any, change: bool
    ) -> None:
        activity = form.instance
        deleted_benefits = [f.instance for f in formset.deleted_forms if f.instance.pk]
        for benefit in deleted_benefits:
            configuration.delete_benefit(benefit=benefit)
        saved = []
        for benefit_form in formset.forms:
            if benefit_form in formset.deleted_forms or not benefit_form.has_changed():
                continue
            data = benefit_form.cleaned_data
            benefit = configuration.save_benefit(
                activity=activity,
                code=data["code"],
                kind=data["kind"],
                name=data.get("name") or "",
                value=data.get("value"),
                stock_total=data.get("stock_total"),
                per_customer_limit=data.get("per_customer_limit"),
                benefit=benefit_form.instance if benefit_form.instance.pk else None,
                coupon_terms={name: data.get(name) for name in COUPON_TERMS if name in data},
            )
            saved.append((benefit_form, benefit))
        record_saved(formset, saved, deleted_benefits)

    def save_related(
        self, request: http.HttpRequest, form: Any, formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        # A new configuration version, higher than any a cache may hold (even after a revert).
        Activity.objects.filter(pk=form.instance.pk).update(
            config_version=bump_version(form.instance, "config_version")
        )

    # --- approval, dry-run and dashboard views ---------------------------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("dashboard/", wrap(self.dashboard_view), name="activities_activity_dashboard"),
            path(
                "gameplays/",
                wrap(lambda request: gameplays.gallery_view(self, request)),
                name="activities_activity_gameplays",
            ),
            path(
                "gameplays/<str:code>/",
                wrap(lambda request, code: gameplays.gameplay_add_view(self, request, code)),
                name="activities_activity_gameplay_add",
            ),
            path(
                "<path:object_id>/submit/",
                wrap(self.submit_view),
                name="activities_activity_submit",
            ),
            path(
                "<path:object_id>/approve/",
                wrap(self.approve_view),
                name="activities_activity_approve",
            ),
            path(
                "<path:object_id>/dry-run/",
                wrap(self.dry_run_view),
                name="activities_activity_dry_run",
            ),
            path(
                "import/",
                wrap(lambda request: import_view(self, request)),
                name="activities_activity_import",
            ),
            path(
                "<path:object_id>/export/",
                wrap(lambda request, object_id: export_view(self, request, object_id)),
                name="activities_activity_export",
            ),
            path(
                "<path:object_id>/figures/",
                wrap(lambda request, object_id: figures_view(self, request, object_id)),
                name="activities_activity_figures",
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: http.HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> http.HttpResponse:
        # New activities start from the gameplay gallery; a link that already names a template
        # (`?template=`) or asks for the expert form (`?expert=1`) gets the plain form.
        if request.method == "GET" and not request.GET and self.has_add_permission(request):
            return redirect(reverse("admin:activities_activity_gameplays"))
        return super().add_view(request, form_url, extra_context)

    def extra_buttons(self, request: http.HttpRequest, obj: Activity) -> list[dict[str, Any]]:
        buttons = [
            {
                "name": "figures",
                "label": _("Figures"),
                "url": reverse("admin:activities_activity_figures", args=[obj.pk]),
                "link": True,
            },
            {
                "name": "export",
                "label": _("Export document"),
                "url": reverse("admin:activities_activity_export", args=[obj.pk]),
                "link": True,
            },
        ]
        if self.can_dry_run(request, obj):
            buttons.append(
                {
                    "name": "dry_run",
                    "label": _("Dry-run"),
                    "url": reverse("admin:activities_activity_dry_run", args=[obj.pk]),
                    "link": True,
                }
            )
        if obj.state == ActivityState.DRAFT:
            if self.has_change_permission(request, obj) and not approvals.submit_refusal(
                activity=obj
            ):
                buttons.append(
                    {
                        "name": "submit",
                        "label": _("Submit for approval"),
                        "url": reverse("admin:activities_activity_submit", args=[obj.pk]),
                    }
                )
            if request.user.has_perm(
                "activities.schedule_activity"
            ) and not approvals.approve_refusal(activity=obj, user=request.user):
                buttons.append(
                    {
                        "name": "approve",
                        "label": _("Approve"),
                        "url": reverse("admin:activities_activity_approve", args=[obj.pk]),
                    }
                )
        return buttons

    def can_dry_run(self, request: http.HttpRequest, obj: Activity) -> bool:
        user = request.user
        return user.has_perm("activities.change_activity") or user.has_perm(
            "activities.schedule_activity"
        )

    def _marker_view(
        self, request: http.HttpRequest, object_id: str, marker: str
    ) -> http.HttpResponse:
        if request.method != "POST":
            return http.HttpResponseNotAllowed(["POST"])
        activity = get_object_or_404(Activity, pk=object_id)
        change_url = reverse("admin:activities_activity_change", args=[activity.pk])
        if marker == approvals.SUBMITTED:
            allowed = self.has_change_permission(request, activity)
            refusal = approvals.submit_refusal(activity=activity)
            done = _("Activity {obj.code} is submitted for approval.")
        else:
            allowed = request.user.has_perm("activities.schedule_activity")
            refusal = approvals.approve_refusal(activity=activity, user=request.user)
            done = _("Activity {obj.code} is approved; it can be scheduled now.")
        if not allowed:
            raise PermissionDenied
        if activity.state != ActivityState.DRAFT:
            refusal = gettext("Only a draft can be submitted or approved.")
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return redirect(change_url)
        with transaction.atomic():
            if marker == approvals.SUBMITTED:
                approvals.submit_for_approval(activity=activity, user=request.user)
            else:
                approvals.approve(activity=activity, user=request.user)
        self.message_user(request, str(done).format(obj=activity), messages.SUCCESS)
        return redirect(change_url)

    def submit_view(self, request: http.HttpRequest, object_id: str) -> http.HttpResponse:
        return self._marker_view(request, object_id, approvals.SUBMITTED)

    def approve_view(self, request: http.HttpRequest, object_id: str) -> http.HttpResponse:
        return self._marker_view(request, object_id, approvals.APPROVED)

    def dashboard_view(self, request: http.HttpRequest) -> http.HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return http.JsonResponse(selectors_dashboard.dashboard())

    def dry_run_view(self, request: http.HttpRequest, object_id: str) -> http.HttpResponse:
        activity = get_object_or_404(Activity.objects.select_related("template"), pk=object_id)
        if not self.can_dry_run(request, activity):
            raise PermissionDenied
        form = DryRunForm(request.POST or None, activity=activity)
        outcome = None
        if request.method == "POST" and form.is_valid():
            outcome = dry_run_from_state(
                activity=activity,
                channel=form.cleaned_data["channel"],
                customer_external_id=form.cleaned_data["customer"],
                payload=form.cleaned_data["payload"],
                state=form.state(),
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": activity,
            "title": _("Dry-run of %(name)s") % {"name": activity.name},
            "form": form,
            "outcome": outcome,
            **outcome_context(outcome),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/activities/activity/dry_run.html", context)


def history_table(logs: Any, obj: Any) -> str:
    """django-fsm-log's audit trail as a readable table: when, what, who, why."""
    rows = list(logs)
    if not rows:
        return str(_("No transitions yet."))
    states = dict(type(obj)._meta.get_field("state").flatchoices)
    header = format_html(
        "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        _("when"),
        _("from"),
        _("to"),
        _("by"),
        _("note"),
    )
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                log.timestamp.strftime("%Y-%m-%d %H:%M:%S UTC"),
                states.get(log.source_state, log.source_state or "-"),
                states.get(log.state, log.state),
                log.by or _("the system"),
                gettext(log.description) if log.description else "",
            )
            for log in rows
        ),
    )
    return format_html('<table class="gambit-table">{}{}</table>', header, body)


__all__ = ["ActivityAdmin", "history_table"]

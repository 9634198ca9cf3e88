"""The operator back-office for the audience: customers (CSV in and out, data-quality filter),
tags, orders (state-machine buttons through the order service) and segments (rule checks,
count preview, sample, static member uploads, snapshots)."""

from __future__ import annotations

import json
from typing import Any

from django import forms, http
from django.contrib import admin, messages
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from reversion_compare.admin import CompareVersionAdmin
from reversion_compare.helpers import html_diff

from core.admin.base import TransitionAdminMixin, TransitionButton
from core.admin.condition_text import condition_text
from core.admin.widgets import ConditionTreeWidget
from core.errors import GambitError
from core.rules import RuleError
from segments.models import PROFILE_FIELDS, Customer, Order, Segment, Tag
from segments.rule_catalog import segment_fields
from segments.selectors import rule_members
from segments.services.cleansing import known_timezones
from segments.services.customers import export_customers_csv, import_customers_csv
from segments.services.orders import transition_order
from segments.services.segments import (
    add_static_members,
    add_static_members_by_tags,
    count_segment,
    sample_segment,
    validate_segment_rule,
)
from segments.tasks import refresh_segment_snapshot_task

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
SAMPLE_SIZE = 20
RECENT_ORDERS = 20
QUALITY_CODES = {
    "invalid_date": _("invalid birthday"),
    "future_date": _("birthday in the future"),
    "implausible_date": _("implausible birthday"),
    "invalid_email": _("invalid email"),
    "invalid_phone": _("invalid phone"),
    "unknown_timezone": _("unknown timezone"),
}


# --- customers -----------------------------------------------------------------------------------


def _field_label(name: str) -> str:
    try:
        return str(Customer._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


class DataQualityFilter(admin.SimpleListFilter):
    title = _("data quality")
    parameter_name = "quality"

    def lookups(self, request: http.HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("flagged", _("any flag")), ("clean", _("no flag")), *QUALITY_CODES.items()]

    def queryset(self, request: http.HttpRequest, queryset: Any) -> Any:
        value = self.value()
        if value == "flagged":
            return queryset.exclude(quality_flags=[])
        if value == "clean":
            return queryset.filter(quality_flags=[])
        if value in QUALITY_CODES:
            return queryset.filter(quality_flags__contains=[{"code": value}])
        return queryset


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = [*PROFILE_FIELDS, "attributes", "tag_set"]

    def clean_timezone(self) -> str:
        value = self.cleaned_data["timezone"].strip()
        if value and value not in known_timezones():
            raise forms.ValidationError(
                _("Unknown timezone; use an IANA name such as Asia/Shanghai.")
            )
        return value


class CsvImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "UTF-8, first row naming the columns (external_id plus any of the export's columns). "
            "An empty cell keeps the stored value; tags are comma-separated."
        ),
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 50 MB; split it."))
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from None


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    change_list_template = "admin/segments/customer/change_list.html"
    list_display = ["external_id", "name", "email", "phone", "level", "flag_count", "created_at"]
    list_filter = [DataQualityFilter, "level", "email_consent", "sms_consent", "wechat_consent"]
    search_fields = ["=external_id", "name", "=email", "=phone"]
    autocomplete_fields = ["tag_set"]
    readonly_fields = ["tag_list", "quality_text", "recent_orders", "created_at", "updated_at"]
    actions = ["export_csv"]
    # Millions of rows: never count the whole table for the paginator's "of N".
    show_full_result_count = False

    @admin.display(description=_("flags"))
    def flag_count(self, customer: Customer) -> int:
        return len(customer.quality_flags or [])

    @admin.display(description=_("tags"))
    def tag_list(self, customer: Customer) -> str:
        # Tags come through CustomerTag (synced by the storefront), so the form has no field.
        tags = customer.tag_set.order_by("code")
        if not tags:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:segments_tag_change", args=[tag.pk]), str(tag)) for tag in tags),
        )

    @admin.display(description=_("latest orders"))
    def recent_orders(self, customer: Customer) -> str:
        orders = customer.orders.order_by("-placed_at", "-pk")[:RECENT_ORDERS]
        if not orders:
            return "-"
        return format_html_join(
            "",
            '<div><a href="{}">{}</a> {} {} ({})</div>',
            (
                (
                    reverse("admin:segments_order_change", args=[order.pk]),
                    order.external_id,
                    order.amount,
                    order.currency,
                    order.get_state_display(),
                )
                for order in orders
            ),
        )

    @admin.display(description=_("data-quality flags"))
    def quality_text(self, customer: Customer) -> str:
        """Each flag in words: which field, what was wrong, the value that was refused."""
        flags = customer.quality_flags or []
        if not flags:
            return "-"
        return format_html_join(
            "",
            "<div>{}</div>",
            (
                (
                    _("%(field)s: %(problem)s (received: %(value)s)")
                    % {
                        "field": _field_label(flag.get("field", "")),
                        "problem": QUALITY_CODES.get(flag.get("code", ""), flag.get("code", "")),
                        "value": flag.get("value", ""),
                    },
                )
                for flag in flags
            ),
        )

    @admin.action(description=_("Export selected customers to CSV"))
    def export_csv(self, request: http.HttpRequest, queryset: Any) -> http.StreamingHttpResponse:
        response = http.StreamingHttpResponse(
            export_customers_csv(customers=queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="customers.csv"'
        return response

    def get_urls(self) -> list[Any]:
        return [
            path(
                "import-csv/",
                self.admin_site.admin_view(self.import_csv_view),
                name="segments_customer_import",
            ),
            *super().get_urls(),
        ]

    def import_csv_view(self, request: http.HttpRequest) -> http.HttpResponse:
        if not request.user.has_perm("segments.import_customers"):
            raise http.Http404
        form = CsvImportForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = import_customers_csv(text=form.cleaned_data["file"])
            except GambitError as error:
                details = " ".join(d["message"] for d in error.details or [])
                form.add_error("file", f"{error.message} {details}".strip())
            else:
                level = messages.WARNING if result.rejected else messages.SUCCESS
                self.message_user(
                    request,
                    _(
                        "%(stored)d of %(received)d rows stored, "
                        "%(flagged)d with data-quality flags."
                    )
                    % {
                        "stored": result.stored,
                        "received": result.received,
                        "flagged": result.flagged,
                    },
                    level=level,
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import customers from CSV"),
            "form": form,
            "result": result,
            "rejected": result.rejected[:200] if result else [],
            "flagged": [
                {
                    **row,
                    "problems": [
                        {
                            "field": _field_label(flag.get("field", "")),
                            "problem": QUALITY_CODES.get(flag.get("code", ""), flag.get("code")),
                            "value": flag.get("value", ""),
                        }
                        for flag in row["flags"]
                    ],
                }
                for row in (result.flagged_rows[:200] if result else [])
            ],
        }
        return TemplateResponse(request, "admin/segments/customer/import_csv.html", context)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "created_at"]
    search_fields = ["code", "name"]


# --- orders ------------------------------------------------------------------------------------


def _order_button(
    name: str, label: Any, done: Any, *, destructive: bool = False
) -> TransitionButton:
    return TransitionButton(
        run=lambda order, user, data: transition_order(
            external_id=order.external_id, transition=name, by=user
        ),
        label=label,
        done=done,
        destructive=destructive,
    )


@admin.register(Order)
class OrderAdmin(TransitionAdminMixin, admin.ModelAdmin):
    """Buttons call `transition_order`, which also raises the order's channel event."""

    transition_buttons = {
        "pay": _order_button("pay", _("Mark paid"), _("Order {obj} is paid.")),
        "ship": _order_button("ship", _("Mark shipped"), _("Order {obj} is shipped.")),
        "complete": _order_button("complete", _("Mark completed"), _("Order {obj} is completed.")),
        "cancel": _order_button(
            "cancel", _("Cancel"), _("Order {obj} is cancelled."), destructive=True
        ),
        "refund": _order_button(
            "refund", _("Refund"), _("Order {obj} is refunded."), destructive=True
        ),
    }
    list_display = [
        "external_id",
        "customer",
        "amount",
        "currency",
        "state",
        "placed_at",
        "paid_at",
    ]
    list_filter = ["state", "currency", "placed_at"]
    search_fields = ["=external_id", "=customer__external_id"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    date_hierarchy = "placed_at"
    show_full_result_count = False
    readonly_fields = [
        "paid_at",
        "shipped_at",
        "completed_at",
        "cancelled_at",
        "refunded_at",
        "created_at",
        "updated_at",
    ]


# --- segments ----------------------------------------------------------------------------------


class SegmentForm(forms.ModelForm):
    """The rule is built in the condition builder (fields picked by label, values typed by
    field, a live count); a static segment has no rule, its members are uploaded."""

    class Meta:
        model = Segment
        fields = ["code", "name", "description", "kind", "rule"]
        help_texts = {
            "rule": _(
                "Who is in the segment: pick customer fields, tags or order figures; the count "
                "below follows every change."
            )
        }

    class Media:
        js = ("segments/segment_form.js",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rule"].widget = ConditionTreeWidget(
            fields=segment_fields(), count_url=reverse("admin:segments_segment_count")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("kind") == Segment.Kind.STATIC:
            # The builder is hidden for a static segment: a rule left in it is dropped.
            data["rule"] = None
            self.errors.pop("rule", None)
        if "kind" in data and "rule" not in self.errors:
            try:
                validate_segment_rule(kind=data["kind"], rule=data.get("rule"))
            except GambitError as error:
                details = error.details or [{"path": "", "message": error.message}]
                self.fields["rule"].widget.errors = [
                    {"path": d.get("path") or "", "message": d["message"]} for d in details
                ]
                for detail in details:
                    self.add_error("rule", detail["message"])
        return data


class StaticMembersForm(forms.Form):
    external_ids = forms.CharField(
        label=_("External ids"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("One storefront customer id per line (or separated by commas)."),
    )
    file = forms.FileField(
        label=_("Or a file of ids"),
        required=False,
        help_text=_("A text or CSV file: the first column of each line is an external id."),
    )
    tags = forms.CharField(
        label=_("Or everyone with any of these tags"),
        required=False,
        help_text=_("Tag codes, comma-separated."),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        ids = _split(data.get("external_ids", ""))
        upload = data.get("file")
        if upload:
            if upload.size > MAX_UPLOAD_BYTES:
                raise forms.ValidationError(_("The file is larger than 50 MB; split it."))
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise forms.ValidationError(_("The file is not UTF-8 text.")) from None
            ids += [line.split(",")[0].strip() for line in text.splitlines()]
        data["ids"] = [value for value in ids if value and value != "external_id"]
        data["tag_codes"] = _split(data.get("tags", ""))
        if not data["ids"] and not data["tag_codes"]:
            raise forms.ValidationError(_("Give external ids, a file of ids, or tags."))
        return data


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


@admin.register(Segment)
class SegmentAdmin(CompareVersionAdmin):
    form = SegmentForm
    change_form_template = "admin/segments/segment/change_form.html"
    list_display = ["code", "name", "kind", "member_count", "counted_at", "snapshot_at"]
    list_filter = ["kind"]
    search_fields = ["code", "name"]
    readonly_fields = ["member_count", "counted_at", "snapshot_at", "created_at", "updated_at"]
    actions = ["count_members", "refresh_snapshots"]

    def compare_rule(self, obj_compare: Any) -> str:
        """The rule's history as text, never as JSON."""
        return html_diff(
            condition_text(obj_compare.value1 if isinstance(obj_compare.value1, dict) else None),
            condition_text(obj_compare.value2 if isinstance(obj_compare.value2, dict) else None),
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "count/",
                self.admin_site.admin_view(self.count_view),
                name="segments_segment_count",
            ),
            path(
                "<int:segment_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="segments_segment_preview",
            ),
            path(
                "<int:segment_id>/members/",
                self.admin_site.admin_view(self.members_view),
                name="segments_segment_members",
            ),
            *super().get_urls(),
        ]

    @admin.action(description=_("Count members now"))
    def count_members(self, request: http.HttpRequest, queryset: Any) -> None:
        for segment in queryset:
            count = count_segment(segment_id=segment.pk)
            self.message_user(
                request,
                _("%(segment)s: %(count)d members.") % {"segment": segment, "count": count},
            )

    @admin.action(description=_("Refresh membership snapshots (in the background)"))
    def refresh_snapshots(self, request: http.HttpRequest, queryset: Any) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        for segment_id in ids:
            transaction.on_commit(
                lambda segment_id=segment_id: refresh_segment_snapshot_task.delay(segment_id)
            )
        self.message_user(request, _("%(count)d snapshot refreshes queued.") % {"count": len(ids)})

    def count_view(self, request: http.HttpRequest) -> http.JsonResponse:
        """The rule builder's live count: POST `rule` (JSON) -> {count, sample} or {errors}."""
        if request.method != "POST" or not self.has_view_permission(request):
            raise http.Http404
        try:
            rule = json.loads(request.POST.get("rule") or "null")
        except ValueError:
            return http.JsonResponse({"errors": [{"path": "", "message": _("Invalid rule.")}]})
        try:
            validate_segment_rule(kind=Segment.Kind.DYNAMIC, rule=rule)
        except GambitError as error:
            return http.JsonResponse({"errors": error.details or []})
        members = rule_members(rule=rule)
        sample = [
            {
                "label": str(customer),
                "url": reverse("admin:segments_customer_change", args=[customer.pk]),
            }
            for customer in members.order_by("pk")[:SAMPLE_SIZE]
        ]
        return http.JsonResponse({"count": members.count(), "sample": sample})

    def preview_view(self, request: http.HttpRequest, segment_id: int) -> http.HttpResponse:
        segment = self.get_object(request, str(segment_id))
        if segment is None or not self.has_view_permission(request, segment):
            raise http.Http404
        error = None
        count, sample = None, []
        try:
            count = count_segment(segment_id=segment.pk)
            sample = sample_segment(segment_id=segment.pk, size=SAMPLE_SIZE)
        except GambitError as problem:
            error = problem.message
        except RuleError as problem:  # a rule stored before a field it names was dropped
            error = str(problem)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": segment,
            "title": _("Members of %(segment)s") % {"segment": segment},
            "count": count,
            "sample": sample,
            "error": error,
        }
        return TemplateResponse(request, "admin/segments/segment/preview.html", context)

    def members_view(self, request: http.HttpRequest, segment_id: int) -> http.HttpResponse:
        segment = self.get_object(request, str(segment_id))
        if segment is None or not self.has_change_permission(request, segment):
            raise http.Http404
        change_url = reverse("admin:segments_segment_change", args=[segment.pk])
        if segment.kind != Segment.Kind.STATIC:
            self.message_user(
                request,
                _("A dynamic segment follows its rule; only static segments take member lists."),
                level=messages.ERROR,
            )
            return redirect(change_url)
        form = StaticMembersForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            added, unknown = add_static_members(
                segment_id=segment.pk, external_ids=form.cleaned_data["ids"]
            )
            if form.cleaned_data["tag_codes"]:
                added += add_static_members_by_tags(
                    segment_id=segment.pk, tag_codes=form.cleaned_data["tag_codes"]
                )
            self.message_user(request, _("%(count)d members added.") % {"count": added})
            if unknown:
                self.message_user(
                    request,
                    _("%(count)d ids are not known customers: %(ids)s")
                    % {"count": len(unknown), "ids": ", ".join(unknown[:50])},
                    level=messages.WARNING,
                )
            count_segment(segment_id=segment.pk)
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": segment,
            "title": _("Add members to %(segment)s") % {"segment": segment},
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/segments/segment/members.html", context)

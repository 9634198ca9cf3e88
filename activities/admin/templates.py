"""Strategy templates and their chains: the chain builder.

Steps are a stacked inline whose config is a form generated from the processor's schema, whose
`when` is a condition-tree builder, and which are reordered by drag and drop. Every write goes
through `activities.services.configuration` (validation, version stamps, frozen templates).
"""

from __future__ import annotations

from typing import Any

from django import forms, http
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from reversion_compare.admin import CompareVersionAdmin

from activities.admin.chain_diff import processor_label, settings_text, with_step_changes
from activities.admin.condition_fields import chain_condition_fields
from activities.engine import registry
from activities.models import ActivityState, Chain, ChainStep, StrategyTemplate
from activities.services import configuration
from core.admin.base import ServiceErrorsMixin, record_saved
from core.admin.condition_text import condition_text
from core.admin.sentences import without_code_spans
from core.admin.widgets import ConditionTreeWidget, SchemaConfigWidget
from core.errors import InvalidConfiguration
from core.labels import PROPERTY_LABELS
from segments.rule_fields import CUSTOMER_FIELDS

# Live activities run a template's chains; their configuration is frozen while they do.
LIVE_STATES = (ActivityState.SCHEDULED, ActivityState.RUNNING, ActivityState.PAUSED)

CHAIN_FIELD_SUGGESTIONS = [
    "event.",
    *sorted(f"customer.{name}" for name in CUSTOMER_FIELDS),
    "customer.attributes.",
    "participation.",
    "vars.",
    "now",
]


def processor_specs() -> dict[str, dict[str, Any]]:
    return {
        cls.key: {
            "label": str(cls.label),
            "description": without_code_spans(cls.description, PROPERTY_LABELS),
            "schema": cls.config_schema,
        }
        for cls in registry.all_processors()
    }


def _widget_path(path: str, prefix: str) -> str:
    """`config.prizes[0].weight` -> `prizes[0].weight` (paths inside the builder)."""
    if path == prefix:
        return ""
    return path[len(prefix) + 1 :] if path.startswith(prefix + ".") else path[len(prefix) :]


class StepForm(forms.ModelForm):
    processor = forms.ChoiceField(label=capfirst(_("processor")), choices=registry.choices)
    config = forms.JSONField(label=capfirst(_("configuration")), required=False)
    when = forms.JSONField(
        label=capfirst(_("only when")),
        required=False,
        help_text=_("Optional condition; the step is skipped when it is false."),
    )

    class Meta:
        model = ChainStep
        fields = ["position", "processor", "config", "when", "on_error"]
        widgets = {"position": forms.HiddenInput}

    # The field picker's entries for this chain (set per request by StepInline.get_formset).
    condition_fields: list[dict[str, Any]] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        picked = self.condition_fields or chain_condition_fields(chain=None)
        self.fields["config"].widget = SchemaConfigWidget(
            processors=processor_specs(), fields=CHAIN_FIELD_SUGGESTIONS, condition_fields=picked
        )
        self.fields["when"].widget = ConditionTreeWidget(fields=picked)
        self.fields["position"].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors or cleaned.get("DELETE"):
            return cleaned
        chain = self.instance.chain if self.instance.chain_id else None
        problems = configuration.check_step(
            processor=cleaned["processor"],
            config=cleaned.get("config") or {},
            when=cleaned.get("when") or None,
            chain=chain,
            step=self.instance if self.instance.pk else None,
        )
        for field in ("config", "when"):
            self.fields[field].widget.errors = [
                {"path": _widget_path(p.path, field), "message": p.message}
                for p in problems
                if p.path == field or p.path.startswith((field + ".", field + "["))
            ]
        for problem in problems:
            field = next(
                (
                    f
                    for f in ("processor", "config", "when", "on_error")
                    if problem.path.startswith(f)
                ),
                None,
            )
            # The builder shows each message at its path; the message names the field by label.
            self.add_error(field, problem.message)
        return cleaned


class StepInline(admin.StackedInline):
    model = ChainStep
    form = StepForm
    extra = 0
    ordering = ["position", "id"]
    classes = ["gambit-step-inline"]

    # A chain that cannot be edited (its activity is live, or the user only views) shows its
    # steps in words: the processor's label, the settings as text, the condition as a sentence.
    read_only_fields = ["step_processor", "step_settings", "step_condition", "on_error"]

    class Media:
        js = ("gambit/step_titles.js",)

    def get_formset(self, request: http.HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        if self._read_only(request, obj):
            kwargs["form"] = forms.ModelForm
        else:
            fields = chain_condition_fields(chain=obj)
            kwargs["form"] = type("StepForm", (self.form,), {"condition_fields": fields})
        return super().get_formset(request, obj, **kwargs)

    def get_fields(self, request: http.HttpRequest, obj: Any = None) -> Any:
        if self._read_only(request, obj):
            return self.read_only_fields
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: http.HttpRequest, obj: Any = None) -> Any:
        if self._read_only(request, obj):
            return self.read_only_fields
        return super().get_readonly_fields(request, obj)

    def _read_only(self, request: http.HttpRequest, obj: Chain | None) -> bool:
        return obj is not None and not self.admin_site._registry[Chain].has_change_permission(
            request, obj
        )

    @admin.display(description=capfirst(_("processor")))
    def step_processor(self, step: ChainStep) -> str:
        return processor_label(step.processor)

    @admin.display(description=capfirst(_("configuration")))
    def step_settings(self, step: ChainStep) -> str:
        return settings_text(step.processor, step.config)

    @admin.display(description=capfirst(_("only when")))
    def step_condition(self, step: ChainStep) -> str:
        return condition_text(step.when) if step.when else "-"


class LiveTemplateMixin:
    """Templates (and their chains) that live activities run are read-only here."""

    def template_of(self, obj: Any) -> StrategyTemplate:
        raise NotImplementedError

    def has_change_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        if (
            obj is not None
            and self.template_of(obj).activities.filter(state__in=LIVE_STATES).exists()
        ):
            return False
        return super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        if obj is not None and self.template_of(obj).activities.exists():
            return False
        return super().has_delete_permission(request, obj)  # type: ignore[misc]


@admin.register(Chain)
class ChainAdmin(ServiceErrorsMixin, LiveTemplateMixin, CompareVersionAdmin):
    change_form_template = "admin/activities/chain/change_form.html"
    inlines = [StepInline]
    list_display = ["__str__", "template", "channel", "requires_lock", "step_count"]
    list_filter = ["template", "channel", "requires_lock"]
    search_fields = ["template__code", "template__name", "channel__code"]
    list_select_related = ["template", "channel"]
    fields = ["template", "channel", "requires_lock"]

    def template_of(self, obj: Chain) -> StrategyTemplate:
        return obj.template

    def compare(self, obj: Chain, version1: Any, version2: Any) -> tuple[list[Any], bool]:
        diff, unfollowed = super().compare(obj, version1, version2)
        return with_step_changes(
            diff, chain_id=obj.pk, version1=version1, version2=version2
        ), unfollowed

    @admin.display(description=_("steps"))
    def step_count(self, obj: Chain) -> int:
        return obj.steps.count()

    def get_readonly_fields(self, request: http.HttpRequest, obj: Any = None) -> list[str]:
        return ["template"] if obj is not None else []

    def render_change_form(
        self, request: http.HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        context["processors"] = [
            {
                "key": cls.key,
                "label": cls.label,
                "description": without_code_spans(cls.description, PROPERTY_LABELS),
            }
            for cls in registry.all_processors()
        ]
        return super().render_change_form(request, context, *args, **kwargs)

    def save_model(self, request: http.HttpRequest, obj: Chain, form: Any, change: bool) -> None:
        saved = configuration.save_chain(
            template=obj.template,
            channel=obj.channel,
            requires_lock=obj.requires_lock,
            chain=obj if change else None,
        )
        obj.pk = saved.pk

    def delete_model(self, request: http.HttpRequest, obj: Chain) -> None:
        configuration.delete_chain(chain=obj)

    def save_formset(
        self, request: http.HttpRequest, form: Any, formset: Any, change: bool
    ) -> None:
        chain = form.instance
        deleted_steps = [f.instance for f in formset.deleted_forms if f.instance.pk]
        for step in deleted_steps:
            configuration.delete_step(step=step)
        kept = [
            f
            for f in formset.forms
            if f not in formset.deleted_forms and (f.instance.pk or f.has_changed())
        ]
        kept.sort(
            key=lambda f: (
                f.cleaned_data.get("position") is None,
                f.cleaned_data.get("position") or 0,
            )
        )
        ordered, saved = [], []
        for step_form in kept:
            data = step_form.cleaned_data
            step = configuration.save_step(
                chain=chain,
                processor=data["processor"],
                config=data.get("config") or {},
                when=data.get("when") or None,
                on_error=data["on_error"],
                step=step_form.instance if step_form.instance.pk else None,
            )
            ordered.append(step.pk)
            saved.append((step_form, step))
        record_saved(formset, saved, deleted_steps)
        current = list(chain.steps.order_by("position", "pk").values_list("pk", flat=True))
        if ordered and ordered != current:
            configuration.reorder_steps(chain=chain, step_ids=ordered)


class ChainInline(admin.TabularInline):
    model = Chain
    extra = 0
    fields = ["channel", "requires_lock", "steps_summary"]
    readonly_fields = ["steps_summary"]
    show_change_link = True

    @admin.display(description=_("steps"))
    def steps_summary(self, obj: Chain) -> str:
        if obj.pk is None:
            return "-"
        labels = dict(registry.choices())
        steps = obj.steps.order_by("position", "pk").values_list("processor", flat=True)
        link = reverse("admin:activities_chain_change", args=[obj.pk])
        return format_html(
            '<ol class="gambit-step-list">{}</ol><a class="button" href="{}">{}</a>',
            format_html_join("", "<li>{}</li>", ((labels.get(p, p),) for p in steps)),
            link,
            _("Edit steps"),
        )


class DuplicateForm(forms.Form):
    code = forms.CharField(label=_("code of the copy"), max_length=100)
    name = forms.CharField(label=_("name of the copy"), max_length=200, required=False)


@admin.register(StrategyTemplate)
class StrategyTemplateAdmin(ServiceErrorsMixin, LiveTemplateMixin, CompareVersionAdmin):
    change_form_template = "admin/activities/strategytemplate/change_form.html"
    inlines = [ChainInline]
    list_display = ["code", "name", "version", "chain_count", "activity_count", "updated_at"]
    search_fields = ["code", "name", "description"]
    list_filter = ["updated_at"]
    readonly_fields = ["version", "created_at", "updated_at"]
    fields = ["code", "name", "description", "version", "created_at", "updated_at"]

    def template_of(self, obj: StrategyTemplate) -> StrategyTemplate:
        return obj

    @admin.display(description=_("chains"))
    def chain_count(self, obj: StrategyTemplate) -> int:
        return obj.chains.count()

    @admin.display(description=_("activities"))
    def activity_count(self, obj: StrategyTemplate) -> int:
        return obj.activities.count()

    def save_formset(
        self, request: http.HttpRequest, form: Any, formset: Any, change: bool
    ) -> None:
        template = form.instance
        deleted_chains = [f.instance for f in formset.deleted_forms if f.instance.pk]
        for chain in deleted_chains:
            configuration.delete_chain(chain=chain)
        saved = []
        for chain_form in formset.forms:
            if chain_form in formset.deleted_forms or not chain_form.has_changed():
                continue
            data = chain_form.cleaned_data
            chain = configuration.save_chain(
                template=template,
                channel=data["channel"],
                requires_lock=data.get("requires_lock", False),
                chain=chain_form.instance if chain_form.instance.pk else None,
            )
            saved.append((chain_form, chain))
        record_saved(formset, saved, deleted_chains)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/duplicate/",
                self.admin_site.admin_view(self.duplicate_view),
                name="activities_strategytemplate_duplicate",
            ),
            *super().get_urls(),
        ]

    def duplicate_view(self, request: http.HttpRequest, object_id: str) -> http.HttpResponse:
        template = get_object_or_404(StrategyTemplate, pk=object_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DuplicateForm(request.POST or None, initial={"code": f"{template.code}-copy"})
        if request.method == "POST" and form.is_valid():
            try:
                copy = configuration.duplicate_template(
                    template=template,
                    new_code=form.cleaned_data["code"],
                    name=form.cleaned_data["name"] or None,
                )
            except InvalidConfiguration as error:
                for detail in error.details or []:
                    form.add_error("code" if detail["path"] == "code" else None, detail["message"])
            else:
                self.message_user(
                    request,
                    _("Template %(code)s is a copy you can edit.") % {"code": copy.code},
                    messages.SUCCESS,
                )
                return redirect("admin:activities_strategytemplate_change", copy.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "title": _("Duplicate %(name)s") % {"name": template},
            "form": form,
        }
        return TemplateResponse(
            request, "admin/activities/strategytemplate/duplicate.html", context
        )

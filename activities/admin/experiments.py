"""Experiments: goals, a broadcast's A/B test (variants, start, pick the winner, cancel) and
the results per variant with a chart. Writes go through activities.experiments services."""

from __future__ import annotations

from typing import Any

from django import forms, http
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from activities.experiments import broadcasts, selectors, services, stats
from activities.models import (
    ConversionGoal,
    Experiment,
    ExperimentKind,
    ExperimentState,
    ExperimentVariant,
)
from core.admin.base import ServiceErrorsMixin, TransitionAdminMixin, TransitionButton

CHART_WIDTH = 420
BAR_HEIGHT = 22


class WinnerForm(forms.Form):
    winner = forms.CharField(
        label=_("Winner"),
        max_length=50,
        required=False,
        help_text=_("A variant's name; leave empty to pick by the first goal's conversion rate."),
    )


class GoalInline(admin.TabularInline):
    model = ConversionGoal
    extra = 1
    fields = ["code", "name", "channel", "window", "condition", "position"]


class VariantInline(admin.TabularInline):
    model = ExperimentVariant
    extra = 2
    fields = ["name", "template", "weight", "position", "broadcast"]
    readonly_fields = ["broadcast"]
    verbose_name_plural = _("variants (a broadcast's A/B test; fixed once created)")

    def has_add_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        return obj is None

    def has_change_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        return obj is None

    def has_delete_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        return False


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = [
            "kind",
            "name",
            "activity",
            "key",
            "segment",
            "test_share",
            "decide_after",
            "auto_pick",
        ]
        help_texts = {
            "key": _("Activity experiments: the key of a split step of the activity's template."),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("kind") == ExperimentKind.ACTIVITY:
            activity = data.get("activity")
            if activity is None:
                self.add_error("activity", _("Pick the activity whose split this is."))
            elif data.get("key") not in services.split_keys(activity=activity):
                self.add_error(
                    "key",
                    _("Use one of the split keys of this activity: %(keys)s.")
                    % {"keys": ", ".join(services.split_keys(activity=activity)) or "-"},
                )
        elif data.get("kind") == ExperimentKind.BROADCAST and data.get("segment") is None:
            self.add_error("segment", _("Pick the segment the message is for."))
        return data


@admin.register(Experiment)
class ExperimentAdmin(ServiceErrorsMixin, TransitionAdminMixin, admin.ModelAdmin):
    form = ExperimentForm
    list_display = ["name", "kind", "state", "activity", "winner", "started_at", "created_at"]
    list_filter = ["kind", "state"]
    search_fields = ["name", "key", "activity__code"]
    list_select_related = ["activity"]
    inlines = [GoalInline, VariantInline]
    transition_buttons = {
        "start": TransitionButton(
            run=lambda obj, user, data: broadcasts.start_broadcast_experiment(
                experiment_id=obj.pk, by=user
            ),
            label=_("Start the test"),
            done=_("The test of {obj} is starting."),
            help_text=_("Assigns the test slice and sends each variant to its part."),
        ),
        "decide": TransitionButton(
            run=lambda obj, user, data: broadcasts.decide_experiment(
                experiment_id=obj.pk, winner=data.get("winner") or None, by=user
            ),
            label=_("Pick the winner"),
            done=_("The winner of {obj} goes to the rest of the segment."),
            form=WinnerForm,
            destructive=True,
        ),
        "cancel": TransitionButton(
            run=lambda obj, user, data: broadcasts.cancel_experiment(experiment_id=obj.pk, by=user),
            label=_("Cancel"),
            done=_("{obj} is cancelled."),
            destructive=True,
        ),
    }

    def get_inlines(self, request: http.HttpRequest, obj: Any) -> list[Any]:
        if obj is not None and obj.kind == ExperimentKind.ACTIVITY:
            return [GoalInline]
        return [GoalInline, VariantInline]

    def get_fields(self, request: http.HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return list(ExperimentForm.Meta.fields)
        return [
            "name",
            "kind",
            "state",
            "activity",
            "key",
            "segment",
            "test_share",
            "decide_after",
            "auto_pick",
            "started_at",
            "decide_at",
            "winner",
            "decided_by",
            "decision",
            "rollout_broadcast",
            "results",
        ]

    def get_readonly_fields(self, request: http.HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        fixed = ["kind", "state", "activity", "key", "started_at", "decide_at", "winner"]
        fixed += ["decided_by", "decision", "rollout_broadcast", "results"]
        if obj.state != ExperimentState.DRAFT:
            fixed += ["segment", "test_share", "decide_after", "auto_pick"]
        return fixed

    # --- writes through the services ---------------------------------------------------------

    def save_model(
        self, request: http.HttpRequest, obj: Experiment, form: Any, change: bool
    ) -> None:
        if change:
            obj.save()
        elif obj.kind == ExperimentKind.ACTIVITY:
            assert obj.activity is not None
            created = services.activity_experiment(
                activity=obj.activity, key=obj.key, name=obj.name
            )
            _become(obj, created)
        # A broadcast experiment is created with its variants, in save_related.

    def save_related(
        self, request: http.HttpRequest, form: Any, formsets: list[Any], change: bool
    ) -> None:
        obj = form.instance
        variants = next((f for f in formsets if f.model is ExperimentVariant), None)
        if not change and obj.kind == ExperimentKind.BROADCAST and variants is not None:
            rows = variants.save(commit=False)
            created = broadcasts.create_broadcast_experiment(
                name=obj.name,
                segment=obj.segment,
                variants=[
                    broadcasts.VariantSpec(name=v.name, template=v.template, weight=v.weight)
                    for v in sorted(rows, key=lambda v: v.position)
                ],
                test_share=obj.test_share if obj.test_share is not None else "",
                decide_after=obj.decide_after,
                auto_pick=obj.auto_pick,
            )
            _become(obj, created)
        for formset in formsets:
            if formset.model is ConversionGoal:
                formset.instance = obj
                self._save_goals(formset)
            elif formset is not variants or change or obj.kind != ExperimentKind.BROADCAST:
                # Variants are written by create_broadcast_experiment only; this just gives the
                # admin's change message the attributes it reads.
                formset.save(commit=False)

    def _save_goals(self, formset: Any) -> None:
        formset.save(commit=False)
        for goal in formset.deleted_objects:
            services.delete_goal(goal=goal)
        for form in formset.forms:
            if not form.has_changed() or form in formset.deleted_forms:
                continue
            data = form.cleaned_data
            services.save_goal(
                experiment=formset.instance,
                code=data["code"],
                channel=data["channel"],
                window=data["window"],
                condition=data.get("condition"),
                name=data.get("name", ""),
                position=data.get("position") or 0,
                goal=form.instance if form.instance.pk else None,
            )

    def has_delete_permission(self, request: http.HttpRequest, obj: Any = None) -> bool:
        # Exposures and conversions are evidence; cancel an experiment instead.
        return False

    # --- results -------------------------------------------------------------------------------

    @admin.display(description=_("results"))
    def results(self, obj: Experiment) -> str:
        result = selectors.experiment_results(experiment=obj)
        if not result.goals:
            return gettext("Add a conversion goal to see results.")
        return format_html(
            "<p>{}</p>{}",
            stats.rule(),
            format_html_join("", "{}", ((goal_block(goal),) for goal in result.goals)),
        )


def _become(obj: Experiment, created: Experiment) -> None:
    """Point the admin's unsaved instance at the row a service created (for the redirect)."""
    obj.pk = created.pk
    obj._state.adding = False
    obj.refresh_from_db()


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _uplift(variant: selectors.VariantResult) -> str:
    if variant.status == "control":
        return gettext("control")
    if variant.status == "not_enough_data":
        return gettext("not enough data yet")
    assert variant.uplift is not None and variant.ci_low is not None
    assert variant.ci_high is not None and variant.p_value is not None
    return gettext("%(uplift)s points (95%% CI %(low)s to %(high)s), p = %(p).4f") % {
        "uplift": f"{variant.uplift * 100:+.2f}",
        "low": f"{variant.ci_low * 100:+.2f}",
        "high": f"{variant.ci_high * 100:+.2f}",
        "p": variant.p_value,
    }


def chart(goal: selectors.GoalResult) -> SafeString:
    """Conversion rate per variant as bars, with each rate's 95% interval as a whisker."""
    top = max([v.rate_high or 0 for v in goal.variants] + [0.0001])
    scale = (CHART_WIDTH - 140) / top
    rows = []
    for index, variant in enumerate(goal.variants):
        y = index * (BAR_HEIGHT + 8)
        width = (variant.rate or 0) * scale
        colour = "#79aec8" if variant.is_control else "#417690"
        whisker = ""
        if variant.rate_low is not None and variant.rate_high is not None:
            whisker = format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#333" stroke-width="1.5"/>',
                round(100 + variant.rate_low * scale, 1),
                round(100 + variant.rate_high * scale, 1),
                y + BAR_HEIGHT / 2,
                y + BAR_HEIGHT / 2,
            )
        rows.append(
            format_html(
                '<text x="0" y="{}" font-size="12">{}</text>'
                '<rect x="100" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>'
                "{}"
                '<text x="{}" y="{}" font-size="11">{}</text>',
                y + 15,
                variant.name,
                y,
                round(width, 1),
                BAR_HEIGHT,
                colour,
                _percent(variant.rate),
                whisker,
                round(100 + width + 6, 1),
                y + 15,
                _percent(variant.rate),
            )
        )
    height = len(goal.variants) * (BAR_HEIGHT + 8)
    return format_html(
        '<svg class="gambit-experiment-chart" width="{}" height="{}" role="img" '
        'aria-label="{}">{}</svg>',
        CHART_WIDTH,
        height,
        gettext("Conversion rate per variant"),
        mark_safe("".join(rows)),  # noqa: S308  (each row built by format_html)
    )


def goal_block(goal: selectors.GoalResult) -> SafeString:
    header = format_html(
        "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        gettext("variant"),
        gettext("exposures"),
        gettext("conversions"),
        gettext("rate"),
        gettext("uplift against the control"),
    )
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((v.name, v.exposures, v.conversions, _percent(v.rate), _uplift(v)) for v in goal.variants),
    )
    return format_html(
        '<h3>{} <small>({}, {})</small></h3><table class="gambit-table">{}{}</table>{}',
        goal.name or goal.code,
        goal.channel,
        gettext("within %(hours)s h of exposure") % {"hours": round(goal.window_seconds / 3600, 2)},
        header,
        body,
        chart(goal),
    )

"""Builders that edit JSON without showing JSON: a condition-tree builder and a form generated
from a processor's JSON Schema. Both keep the value in a hidden textarea that the browser code
(activities/static/gambit/builders.js) fills in, so the server side stays a plain JSONField.

Reusable elsewhere (the segments admin): give a JSONField the widget

    ConditionTreeWidget(fields=[...suggested field names...], count_url="/admin/.../count/")

`count_url`, when set, receives a POST of `rule=<json>` (with the CSRF token) after every edit
and should answer `{"count": <int>}` or `{"errors": [{"path": ..., "message": ...}]}`; the
builder shows the number live beside the tree.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from core.labels import ENUM_LABELS, OPERATOR_LABELS, PROPERTY_LABELS
from core.rules import OPERATORS

from .sentences import sentence

BUILDER_JS = ("gambit/vendor/Sortable.min.js", "gambit/field_picker.js", "gambit/builders.js")
BUILDER_CSS = {"all": ("gambit/gambit.css",)}


def builder_strings() -> dict[str, str]:
    """Every text the browser code shows, translated on the server (no JS catalog needed)."""
    strings = {
        "all": _("all of these are true"),
        "any": _("any of these is true"),
        "not": _("none of this (NOT)"),
        "add_condition": _("+ condition"),
        "add_group": _("+ group"),
        "remove": _("remove"),
        "field": _("field"),
        "choose_field": _("choose a field"),
        "other_field": _("other field (type its name)"),
        "field_key": _("key"),
        "operator": _("operator"),
        "value": _("value"),
        "low": _("from"),
        "high": _("to"),
        "list_hint": _("separate values with commas"),
        "yes": _("yes"),
        "no": _("no"),
        "empty_tree": _("No condition: always true."),
        "add_item": _("+ add"),
        "add_entry": _("+ add entry"),
        "key": _("name"),
        "literal": _("fixed value"),
        "from_field": _("from context field"),
        "none": _("(none)"),
        "count": _("Matching customers:"),
        "counting": _("counting..."),
        "raw_json": _("This processor has no form; edit its configuration as JSON."),
        "invalid_json": _("This is not valid JSON."),
        "drop_here": _("Drag a processor here, or click it, to add a step."),
        "drag": _("drag to reorder"),
        "reason": _("reason shown when it fails"),
    }
    strings.update({f"op_{op}": OPERATOR_LABELS[op] for op in OPERATORS})
    strings.update({f"prop_{name}": label for name, label in PROPERTY_LABELS.items()})
    strings.update({f"enum_{name}": label for name, label in ENUM_LABELS.items()})
    return {key: str(sentence(value)) for key, value in strings.items()}


class JSONBuilderWidget(forms.Widget):
    template_name = "gambit/widgets/json_builder.html"
    builder = ""

    class Media:
        js = BUILDER_JS
        css = BUILDER_CSS

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        # Set per bound form by the form's clean(): [{"path", "message"}], shown at the path.
        self.errors: list[dict[str, str]] = []

    def format_value(self, value: Any) -> str:
        if value in (None, "", "null"):  # forms.JSONField prepares None as "null"
            return ""
        if isinstance(value, str):
            return value  # what the operator sent, possibly invalid, shown back as is
        return json.dumps(value, ensure_ascii=False)

    def builder_options(self) -> dict[str, Any]:
        return {}

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> str:
        # The project's template engine (templates/), not the forms renderer's own.
        return mark_safe(render_to_string(self.template_name, self.get_context(name, value, attrs)))  # noqa: S308

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"]["builder"] = self.builder
        context["widget"]["options"] = json.dumps(
            {**self.builder_options(), "errors": self.errors, "i18n": builder_strings()},
            ensure_ascii=False,
        )
        return context


class ConditionTreeWidget(JSONBuilderWidget):
    builder = "condition-tree"

    def __init__(
        self,
        *,
        fields: list[Any] | None = None,
        count_url: str | None = None,
        optional: bool = True,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(attrs)
        self.fields = fields or []
        self.count_url = count_url
        self.optional = optional

    def builder_options(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "operators": list(OPERATORS),
            "countUrl": self.count_url,
            "optional": self.optional,
        }


class SchemaConfigWidget(JSONBuilderWidget):
    """A step's config, as a form generated from the selected processor's schema."""

    builder = "schema-form"

    def __init__(
        self,
        *,
        processors: dict[str, dict[str, Any]],
        fields: list[str] | None = None,
        condition_fields: list[Any] | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(attrs)
        self.processors = processors
        self.fields = fields or []
        # Described fields ({name, label, type, ...}) for a rule_check step's condition tree.
        self.condition_fields = condition_fields or self.fields

    def builder_options(self) -> dict[str, Any]:
        return {
            "processors": self.processors,
            "fields": self.fields,
            "conditionFields": self.condition_fields,
            "operators": list(OPERATORS),
        }

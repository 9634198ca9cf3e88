"""Form fields from a gameplay's parameter schema, and back.

Each top-level parameter is one field named `param_<name>`; an array of objects is a table of
rows, one field per cell (`param_<name>__<row>__<item>`), with blank rows dropped. A benefit is
a select of the benefits listed on the same page. Errors from the gameplay service come back by
parameter path (`milestones[1].day`) and land on the field of that cell.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.utils.text import format_lazy

PREFIX = "param_"
_CELL = re.compile(r"^(?P<name>[a-z_]+)\[(?P<row>\d+)\]\.(?P<item>[a-z_]+)$")


def _label(spec: dict[str, Any]) -> Any:
    title = spec.get("title", "")
    unit = spec.get("x-unit")
    return format_lazy("{} ({})", title, unit) if unit else title


def _types(spec: dict[str, Any]) -> set[str]:
    kind = spec.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _nullable(spec: dict[str, Any]) -> bool:
    return "null" in _types(spec) or None in spec.get("enum", [])


def _value(text: str) -> Any:
    """A comparison value typed by the operator: a number or true/false when it reads as one."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def scalar_field(
    spec: dict[str, Any], *, benefits: list[tuple[str, str]], required: bool
) -> forms.Field:
    types = _types(spec)
    common: dict[str, Any] = {"label": _label(spec), "help_text": spec.get("description", "")}
    if spec.get("x-kind") == "benefit":
        return forms.ChoiceField(
            choices=[("", "---------"), *benefits],
            required=required and "null" not in types,
            **common,
        )
    if "enum" in spec:
        labels = spec.get("x-choices", {})
        choices = [(value, labels.get(value, value)) for value in spec["enum"] if value is not None]
        return forms.ChoiceField(choices=[("", "---------"), *choices], required=required, **common)
    if types == {"boolean"}:
        return forms.BooleanField(required=False, **common)
    if "integer" in types:
        return forms.IntegerField(
            required=required and "null" not in types,
            min_value=spec.get("minimum"),
            max_value=spec.get("maximum"),
            **common,
        )
    return forms.CharField(required=required and "null" not in types, max_length=200, **common)


@dataclass(frozen=True)
class Table:
    """An array parameter as rows of cells, for the template."""

    name: str
    label: Any
    help_text: Any
    columns: list[Any]
    rows: list[list[str]]  # field names, row by row


def add_parameter_fields(
    form: forms.Form,
    schema: dict[str, Any],
    *,
    defaults: dict[str, Any],
    benefits: list[tuple[str, str]],
) -> list[Any]:
    """Add the schema's fields to `form`; returns the layout: field names and Tables."""
    layout: list[Any] = []
    required = set(schema.get("required", []))
    for name, spec in schema["properties"].items():
        if spec.get("type") == "array":
            items = spec["items"]
            table = Table(
                name=name,
                label=_label(spec),
                help_text=spec.get("description", ""),
                columns=[_label(item) for item in items["properties"].values()],
                rows=[],
            )
            rows = defaults.get(name) or []
            # Room for three more rows than the defaults fill, within the schema's limit.
            for index in range(min(spec.get("maxItems", 10), len(rows) + 3)):
                row = rows[index] if index < len(rows) else {}
                cells = []
                for item_name, item_spec in items["properties"].items():
                    field_name = f"{PREFIX}{name}__{index}__{item_name}"
                    field = scalar_field(item_spec, benefits=benefits, required=False)
                    value = row.get(item_name)
                    field.initial = "" if value is None else value
                    form.fields[field_name] = field
                    cells.append(field_name)
                table.rows.append(cells)
            layout.append(table)
            continue
        field_name = PREFIX + name
        field = scalar_field(spec, benefits=benefits, required=name in required)
        field.initial = defaults.get(name, spec.get("default"))
        form.fields[field_name] = field
        layout.append(field_name)
    return layout


def _clean(spec: dict[str, Any], value: Any) -> Any:
    if value in ("", None):
        return None if _nullable(spec) else value
    if spec.get("x-kind") is None and "number" in _types(spec) and isinstance(value, str):
        return _value(value)
    return value


def parameters_from(cleaned: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The parameters the form's cleaned data describes (blank table rows left out)."""
    parameters: dict[str, Any] = {}
    for name, spec in schema["properties"].items():
        if spec.get("type") != "array":
            value = _clean(spec, cleaned.get(PREFIX + name))
            if value is not None or _nullable(spec):
                parameters[name] = value
            continue
        items = spec["items"]["properties"]
        rows = []
        for index in range(spec.get("maxItems", 10)):
            raw = {item: cleaned.get(f"{PREFIX}{name}__{index}__{item}") for item in items}
            if all(value in ("", None) for value in raw.values()):
                continue
            row = {}
            for item, item_spec in items.items():
                value = _clean(item_spec, raw[item])
                if value not in ("", None) or _nullable(item_spec):
                    row[item] = value
            rows.append(row)
        parameters[name] = rows
    return parameters


def field_for(path: str, form: forms.Form, schema: dict[str, Any]) -> str | None:
    """The form field a parameter path names, or None (then it is a form-wide error).

    Row numbers count the rows kept; the form's rows include blank ones, so map back."""
    if path in schema["properties"] and PREFIX + path in form.fields:
        return PREFIX + path
    match = _CELL.match(path)
    if match is None:
        return None
    name, kept, item = match["name"], int(match["row"]), match["item"]
    spec = schema["properties"].get(name, {})
    items = spec.get("items", {}).get("properties", {})
    rows = [
        index
        for index in range(spec.get("maxItems", 10))
        if any(
            form.cleaned_data.get(f"{PREFIX}{name}__{index}__{cell}") not in ("", None)
            for cell in items
        )
    ]
    if kept >= len(rows):
        return None
    field_name = f"{PREFIX}{name}__{rows[kept]}__{item}"
    return field_name if field_name in form.fields else None


def benefit_choices(rows: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (row["code"], f"{row['code']} · {row['name']}" if row.get("name") else row["code"])
        for row in rows
        if row.get("code")
    ]

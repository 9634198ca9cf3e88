"""JSON Schema errors in the operator's words and language.

jsonschema words its errors for developers (`'Check in Day!' does not match
'^[a-z0-9_-]{1,64}$'`, `'benefit' is a required property`), in English, naming internal keys.
Here each error becomes one sentence that names the field by its label, says what is expected,
and sits on the field it concerns (a missing property's error points at that property).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from jsonschema.exceptions import ValidationError

from core.labels import ENUM_LABELS, PROPERTY_LABELS

# What a pattern the processors use asks for, said in words.
PATTERN_WORDS = {
    "^[a-z0-9_-]{1,64}$": gettext_lazy(
        "lower-case letters (a-z), digits, _ and -, at most 64 characters"
    ),
    "^[a-z][a-z0-9_]{0,39}$": gettext_lazy(
        "a lower-case letter (a-z) first, then lower-case letters, digits or _, "
        "at most 40 characters"
    ),
    "^[a-z_][a-z0-9_]{0,63}$": gettext_lazy(
        "lower-case letters (a-z), digits and _, not starting with a digit, at most 64 characters"
    ),
    "^https?://": gettext_lazy("an address starting with https:// (or http://)"),
}
TYPE_WORDS = {
    "integer": gettext_lazy("a whole number"),
    "number": gettext_lazy("a number"),
    "string": gettext_lazy("text"),
    "boolean": gettext_lazy("yes or no"),
    "array": gettext_lazy("a list"),
    "object": gettext_lazy("a group of settings"),
    "null": gettext_lazy("empty"),
}


def schema_error(
    error: ValidationError,
    *,
    labels: Mapping[str, str | Promise] = PROPERTY_LABELS,
    enum_labels: Mapping[str, str | Promise] = ENUM_LABELS,
) -> tuple[list[Any], str]:
    """(path, message) for one jsonschema error; the path names the field the message is about.
    Labels default to the built-in processors' (those the config forms show)."""
    path, message = _schema_error(error, labels=labels, enum_labels=enum_labels)
    return path, capfirst(message)


def _label(path: list[Any], labels: Mapping[str, str | Promise]) -> str:
    for part in reversed(path):
        if isinstance(part, str):
            return str(labels.get(part, part.replace("_", " ")))
    return _("this setting")


def _shown(value: Any) -> str:
    if value is None or value == "":
        return _("(empty)")
    return str(value)


def _schema_error(
    error: ValidationError,
    *,
    labels: Mapping[str, str | Promise] = PROPERTY_LABELS,
    enum_labels: Mapping[str, str | Promise] = ENUM_LABELS,
) -> tuple[list[Any], str]:
    path = list(error.absolute_path)
    keyword = error.validator
    limit: Any = error.validator_value
    value: Any = error.instance
    if keyword == "required":
        missing = next((name for name in limit if name not in value), limit[0])
        path.append(missing)
        return path, _("%(label)s is required.") % {"label": _label(path, labels)}
    label = _label(path, labels)
    if keyword == "type":
        kinds = limit if isinstance(limit, list) else [limit]
        words = _(" or ").join(str(TYPE_WORDS.get(kind, kind)) for kind in kinds)
        return path, _("%(label)s must be %(expected)s, not %(value)s.") % {
            "label": label,
            "expected": words,
            "value": _shown(value),
        }
    if keyword == "pattern":
        expected = PATTERN_WORDS.get(limit)
        if expected is None:
            return path, _("%(label)s %(value)s is not in the expected form.") % {
                "label": label,
                "value": _shown(value),
            }
        return path, _("%(label)s %(value)s is not allowed: use %(expected)s.") % {
            "label": label,
            "value": _shown(value),
            "expected": expected,
        }
    if keyword in ("minimum", "exclusiveMinimum"):
        template = (
            _("%(label)s must be at least %(limit)s.")
            if keyword == "minimum"
            else _("%(label)s must be more than %(limit)s.")
        )
        return path, template % {"label": label, "limit": limit}
    if keyword in ("maximum", "exclusiveMaximum"):
        template = (
            _("%(label)s must be at most %(limit)s.")
            if keyword == "maximum"
            else _("%(label)s must be less than %(limit)s.")
        )
        return path, template % {"label": label, "limit": limit}
    if keyword in ("enum", "const"):
        options = limit if keyword == "enum" else [limit]
        names = enum_labels.get
        choices = _(", ").join(str(names(str(o), o)) for o in options)
        return path, _("%(label)s must be one of: %(choices)s.") % {
            "label": label,
            "choices": choices,
        }
    if keyword == "minLength":
        if limit <= 1:
            return path, _("%(label)s must not be empty.") % {"label": label}
        return path, _("%(label)s needs at least %(limit)s characters.") % {
            "label": label,
            "limit": limit,
        }
    if keyword == "maxLength":
        return path, _("%(label)s may have at most %(limit)s characters.") % {
            "label": label,
            "limit": limit,
        }
    if keyword == "minItems":
        return path, _("%(label)s needs at least %(limit)s entries.") % {
            "label": label,
            "limit": limit,
        }
    if keyword == "maxItems":
        return path, _("%(label)s may have at most %(limit)s entries.") % {
            "label": label,
            "limit": limit,
        }
    if keyword == "additionalProperties":
        schema: Any = error.schema
        extra = sorted(set(value) - set(schema.get("properties", {})))
        return path, _("Unknown settings: %(names)s.") % {"names": ", ".join(map(str, extra))}
    return path, _("%(label)s is not valid.") % {"label": label}

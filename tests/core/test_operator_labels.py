"""What the chain builder shows for a processor's settings is words in the operator's language:
every setting and every choice of every registered processor has a label with a zh-Hans
translation (the builder otherwise falls back to the raw name, English under zh-Hans). Labels
that stand alone read as sentences in English."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import translation

from activities.engine import registry
from core.admin.sentences import sentence, without_code_spans
from core.admin.widgets import builder_strings
from core.labels import ENUM_LABELS, PROPERTY_LABELS

CJK = re.compile(r"[\u4e00-\u9fff]")
# Read the same in Chinese.
PROPER_NAMES = {"URL"}


def _names(schema: Any) -> Iterator[tuple[str, str]]:
    """("prop", name) and ("enum", value) for every setting and choice in a JSON Schema."""
    if not isinstance(schema, dict):
        return
    for value in schema.get("enum", []):
        yield "enum", str(value)
    for name, part in schema.get("properties", {}).items():
        yield "prop", name
        yield from _names(part)
    for key in ("items", "additionalProperties"):
        yield from _names(schema.get(key))
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            yield from _names(part)


def settings_and_choices() -> list[tuple[str, str]]:
    return sorted(
        {
            (kind, name)
            for processor in registry.all_processors()
            for kind, name in _names(processor.config_schema)
        }
    )


@pytest.mark.parametrize(("kind", "name"), settings_and_choices())
def test_every_processor_setting_and_choice_has_a_translated_label(kind, name):
    labels = PROPERTY_LABELS if kind == "prop" else ENUM_LABELS
    assert name in labels, f"{kind} {name} has no label"
    with translation.override("zh-hans"):
        label = str(labels[name])
    assert CJK.search(label) or label in PROPER_NAMES, f"{kind} {name}: {label}"


def test_builder_labels_read_as_sentences_in_english_only():
    with translation.override("en"):
        strings = builder_strings()
    assert strings["add_condition"] == "+ Condition"
    assert strings["remove"] == "Remove"
    assert strings["op_gte"] == "At least"
    assert strings["prop_quantity"] == "Quantity"
    with translation.override("zh-hans"):
        assert builder_strings()["prop_quantity"] == str(PROPERTY_LABELS["quantity"])


def test_sentence_leaves_other_scripts_and_inner_words_alone():
    assert sentence("(none)") == "(None)"
    assert sentence("step 3 (Grant a benefit): quantity") == "Step 3 (Grant a benefit): quantity"
    assert sentence("数量 quantity") == "数量 quantity"
    assert sentence("") == ""


def test_descriptions_name_settings_by_their_labels_not_in_code_spans():
    with translation.override("en"):
        text = without_code_spans("`fields` adds values; `zzz` stays", PROPERTY_LABELS)
    assert text == "“result fields” adds values; “zzz” stays"

"""Every reason code the engine can store on a run reaches the operator as words in zh-Hans and
in English: the codes are read from the source (what `Rejected`, `StepFailed`, a processor's
`reason` and the runner give), so a new code without a translated label fails here."""

import ast
import re
from pathlib import Path

import pytest
from django.utils import translation

from activities.engine import registry
from activities.reason_labels import reason_label

SOURCE = Path(__file__).resolve().parents[2] / "activities"
RAISERS = {"Rejected", "StepFailed"}
CJK = re.compile(r"[\u4e00-\u9fff]")
# What stands for the variable part of a built code: a benefit's code, or in the runner's
# "<processor>_error" a processor's key.
BENEFIT = "chance"
STEP_ERROR = "_error"


def _code(node: ast.expr) -> str | None:
    """A literal code, or an f-string's code with a sample for its variable part."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        literal = [str(part.value) for part in node.values if isinstance(part, ast.Constant)]
        sample = registry.all_processors()[0].key if literal[-1:] == [STEP_ERROR] else BENEFIT
        return "".join(
            str(part.value) if isinstance(part, ast.Constant) else sample for part in node.values
        )
    return None


def _codes(nodes: list[ast.expr | None]) -> list[str]:
    found = []
    for node in nodes:
        if isinstance(node, ast.IfExp):
            found += _codes([node.body, node.orelse])
        elif node is not None and (code := _code(node)):
            found.append(code)
    return found


def _codes_in(node: ast.AST) -> list[str]:
    """Codes given to `Rejected`/`StepFailed`, set as a run's reason, returned by a processor's
    `reason`, passed as `missing=`/`reason=`, or listed in a module's *REASONS* table."""
    if isinstance(node, ast.Call):
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        given = node.args[:1] if name in RAISERS else []
        return _codes(given + [k.value for k in node.keywords if k.arg in ("missing", "reason")])
    if isinstance(node, ast.Assign):
        names = [getattr(target, "attr", getattr(target, "id", "")) for target in node.targets]
        if "reason" in names:
            return _codes([node.value])
        if any("REASONS" in name for name in names) and isinstance(node.value, ast.Dict):
            return _codes(list(node.value.values))
    if isinstance(node, ast.FunctionDef) and node.name == "reason":
        return _codes([n.value for n in ast.walk(node) if isinstance(n, ast.Return)])
    return []


def engine_reason_codes() -> set[str]:
    codes: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        if "migrations" in path.parts or path.name == "reason_labels.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            codes.update(_codes_in(node))
    codes.update(str(processor.default_reason) for processor in registry.all_processors())
    return {code for code in codes if code}


def test_the_source_scan_finds_the_codes_it_should():
    codes = engine_reason_codes()
    assert {"rule_not_met", "out_of_stock", "team_full", "no_prize", "not_enough_chance"} <= codes
    assert {"chance_limit_reached", "unknown_channel", "emit_depth_exceeded"} <= codes


@pytest.mark.parametrize("code", sorted(engine_reason_codes()))
def test_every_reason_code_reads_as_words_in_both_languages(code):
    with translation.override("en"):
        english = reason_label(code)
    with translation.override("zh-hans"):
        chinese = reason_label(code)
    assert "_" not in english, english
    assert CJK.search(chinese), f"{code}: {chinese}"

"""A chain's history at the level an operator thinks: a step added, removed or moved; this
setting of that step from X to Y; conditions written out as text.

django-reversion-compare compares a chain's steps as a list of their names, so changing a
quantity from 1 to 2 read "1. grant_benefit -> 1. grant_benefit" and unchanged steps looked
changed. Here the steps of each revision are matched by id, and each matched step's settings
are compared leaf by leaf.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from reversion.models import Version

from activities.engine import registry
from activities.models import ChainStep
from core.admin.condition_text import condition_text, literal_text
from core.admin.sentences import sentence
from core.labels import ENUM_LABELS, PROPERTY_LABELS


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(value, dict) and value:
        out: dict[tuple[Any, ...], Any] = {}
        for key, child in value.items():
            out.update(_leaves(child, (*path, key)))
        return out
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        for index, child in enumerate(value):
            out.update(_leaves(child, (*path, index)))
        return out
    return {path: value}


def _setting_label(path: tuple[Any, ...]) -> str:
    words = []
    for part in path:
        if isinstance(part, int):
            words.append(_("no. %(n)d") % {"n": part + 1})
        else:
            words.append(str(PROPERTY_LABELS.get(part, part.replace("_", " "))))
    return " / ".join(words) or _("settings")


def _setting_value(value: Any) -> str:
    if isinstance(value, str) and value in ENUM_LABELS:
        return str(ENUM_LABELS[value])
    return literal_text(value)


def processor_label(key: str) -> str:
    processor = registry.get(key)
    return str(processor.label) if processor is not None else key


def settings_text(processor: str, config: dict[str, Any]) -> str:
    """A step's settings as an operator reads them: a rule as text, others as "label: value"."""
    config = dict(config or {})
    parts = []
    if processor == "rule_check":
        reason = config.pop("reason", None)
        parts.append(condition_text(config))
        config = {"reason": reason} if reason else {}
    parts += [
        f"{_setting_label(path)}: {_setting_value(value)}"
        for path, value in sorted(_leaves(config).items(), key=lambda item: str(item[0]))
        if config
    ]
    return "; ".join(parts) or "-"


def _step_name(step: dict[str, Any], number: int) -> str:
    label = processor_label(step["processor"])
    return _("step %(n)d (%(processor)s)") % {"n": number, "processor": label}


def _moved(old_ids: list[int], new_ids: list[int]) -> set[int]:
    """Steps outside the longest common subsequence of the kept steps' order."""
    rows, cols = len(old_ids), len(new_ids)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            table[i][j] = (
                table[i + 1][j + 1] + 1
                if old_ids[i] == new_ids[j]
                else max(table[i + 1][j], table[i][j + 1])
            )
    stay, i, j = set(), 0, 0
    while i < rows and j < cols:
        if old_ids[i] == new_ids[j]:
            stay.add(old_ids[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return set(new_ids) - stay


def step_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """Sentences saying how the steps `new` differ from `old` (each in position order)."""
    old_at = {step["id"]: index + 1 for index, step in enumerate(old)}
    new_at = {step["id"]: index + 1 for index, step in enumerate(new)}
    old_by_id = {step["id"]: step for step in old}
    changes = []
    for step in old:
        if step["id"] not in new_at:
            changes.append(_("Removed %(step)s.") % {"step": _step_name(step, old_at[step["id"]])})
    kept_old = [s["id"] for s in old if s["id"] in new_at]
    kept_new = [s["id"] for s in new if s["id"] in old_at]
    moved = _moved(kept_old, kept_new)
    for step in new:
        number = new_at[step["id"]]
        before = old_by_id.get(step["id"])
        if before is None:
            changes.append(_("Added %(step)s.") % {"step": _step_name(step, number)})
            continue
        name = _step_name(step, number)
        if step["id"] in moved:
            changes.append(
                _("Moved %(step)s from position %(old)d to %(new)d.")
                % {"step": name, "old": old_at[step["id"]], "new": number}
            )
        changes += _setting_changes(before, step, name)
    return changes


def _setting_changes(before: dict[str, Any], after: dict[str, Any], name: str) -> list[str]:
    changes = []
    if before["processor"] != after["processor"]:
        changes.append(
            _("%(step)s: processor from %(old)s to %(new)s.")
            % {
                "step": name,
                "old": processor_label(before["processor"]),
                "new": processor_label(after["processor"]),
            }
        )
        return changes
    if (before.get("when") or None) != (after.get("when") or None):
        changes.append(
            _("%(step)s: only when from “%(old)s” to “%(new)s”.")
            % {
                "step": name,
                "old": condition_text(before.get("when")),
                "new": condition_text(after.get("when")),
            }
        )
    if before.get("on_error") != after.get("on_error"):
        changes.append(
            _("%(step)s: on error from %(old)s to %(new)s.")
            % {
                "step": name,
                "old": _setting_value(before.get("on_error")),
                "new": _setting_value(after.get("on_error")),
            }
        )
    old_config, new_config = before.get("config") or {}, after.get("config") or {}
    if old_config == new_config:
        return changes
    if after["processor"] == "rule_check":
        strip = lambda config: {k: v for k, v in config.items() if k != "reason"}  # noqa: E731
        if strip(old_config) != strip(new_config):
            changes.append(
                _("%(step)s: condition from “%(old)s” to “%(new)s”.")
                % {
                    "step": name,
                    "old": condition_text(strip(old_config)),
                    "new": condition_text(strip(new_config)),
                }
            )
        old_config = {"reason": old_config.get("reason")}
        new_config = {"reason": new_config.get("reason")}
    old_leaves, new_leaves = _leaves(old_config), _leaves(new_config)
    for path in sorted(set(old_leaves) | set(new_leaves), key=lambda p: [str(x) for x in p]):
        was, now = old_leaves.get(path), new_leaves.get(path)
        if was == now:
            continue
        changes.append(
            _("%(step)s: %(setting)s from %(old)s to %(new)s.")
            % {
                "step": name,
                "setting": _setting_label(path),
                "old": _setting_value(was),
                "new": _setting_value(now),
            }
        )
    return changes


def steps_at(version: Version, chain_id: int) -> list[dict[str, Any]]:
    """The chain's steps as recorded in `version`'s revision, in position order."""
    content_type = ContentType.objects.get_for_model(ChainStep)
    steps = [
        {**v.field_dict, "id": int(v.object_id)}
        for v in version.revision.version_set.filter(content_type=content_type)
    ]
    steps = [s for s in steps if s.get("chain_id") == chain_id]
    return sorted(steps, key=lambda s: (s.get("position") or 0, s["id"]))


def render_changes(changes: Iterable[str]) -> str:
    return format_html(
        '<ul class="gambit-diff">{}</ul>',
        format_html_join("", "<li>{}</li>", ((sentence(change),) for change in changes)),
    )


def with_step_changes(
    diff: list[dict[str, Any]], *, chain_id: int, version1: Version, version2: Version
) -> list[dict[str, Any]]:
    """reversion-compare's field diff of a chain, its list-of-names steps entry replaced by
    the operator-level changes (none when the steps did not change)."""
    kept = [
        entry for entry in diff if getattr(entry["field"], "related_model", None) is not ChainStep
    ]
    changes = step_changes(steps_at(version1, chain_id), steps_at(version2, chain_id))
    if changes:
        field = SimpleNamespace(verbose_name=_("steps"), help_text="")
        kept.append(
            {"field": field, "is_related": False, "follow": True, "diff": render_changes(changes)}
        )
    return kept

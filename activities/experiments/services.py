"""Experiment writes an operator makes: an activity experiment's record, conversion goals.

What the engine writes while it processes an event lives below, where the engine can import
it: exposures (`activities.services.exposures`, the split processor) and conversions
(`activities.services.conversions`, which also owns the goal condition's grammar).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _

from activities.engine.errors import ConfigError, error_details
from activities.models import Activity, ChainStep, Channel, ConversionGoal, Experiment
from activities.services.conversions import check_goal_field
from activities.services.exposures import experiment_for_split
from core.errors import InvalidConfiguration
from core.rules import RuleError, parse

MAX_WINDOW = dt.timedelta(days=365)


def _refuse(message: str, errors: list[ConfigError]) -> InvalidConfiguration:
    return InvalidConfiguration(message, details=error_details(errors))


# --- experiments of an activity ----------------------------------------------------------------


def split_keys(*, activity: Activity) -> list[str]:
    """The experiment keys of the split steps in the activity's template, in chain order."""
    keys: list[str] = []
    configs = ChainStep.objects.filter(
        chain__template_id=activity.template_id, processor="split"
    ).order_by("chain_id", "position", "pk")
    for config in configs.values_list("config", flat=True):
        key = config.get("key") if isinstance(config, dict) else None
        if isinstance(key, str) and key not in keys:
            keys.append(key)
    return keys


def activity_experiment(*, activity: Activity, key: str, name: str = "") -> Experiment:
    """The experiment of the activity's split `key` (created if no customer reached it yet), so
    goals can be set before the first exposure."""
    if key not in split_keys(activity=activity):
        message = _("The template of %(activity)s has no split step with the key %(key)s.") % {
            "activity": activity.code,
            "key": key,
        }
        raise _refuse(message, [ConfigError("key", message, "unknown_split")])
    experiment_id, _salt = experiment_for_split(
        activity_id=activity.pk, activity_code=activity.code, key=key
    )
    experiment = Experiment.objects.get(pk=experiment_id)
    if name and experiment.name != name:
        experiment.name = name
        experiment.save(update_fields=["name"])
    return experiment


# --- goals -------------------------------------------------------------------------------------


def goal_errors(*, channel: Any, window: Any, condition: Any) -> list[ConfigError]:
    errors: list[ConfigError] = []
    if not isinstance(channel, Channel) and not Channel.objects.filter(code=channel).exists():
        errors.append(
            ConfigError(
                "channel",
                _("There is no channel %(code)s.") % {"code": channel},
                "unknown_channel",
            )
        )
    if not isinstance(window, dt.timedelta) or not dt.timedelta(0) < window <= MAX_WINDOW:
        errors.append(
            ConfigError(
                "window",
                _("The window is a duration above zero and at most 365 days."),
                "invalid_window",
            )
        )
    if condition:
        try:
            parse(condition, check_field=check_goal_field, path="condition")
        except RuleError as error:
            errors.append(ConfigError(error.path or "condition", error.message, error.code))
    return errors


def save_goal(
    *,
    experiment: Experiment,
    code: str,
    channel: Channel | str,
    window: dt.timedelta,
    condition: dict[str, Any] | None = None,
    name: str = "",
    position: int = 0,
    goal: ConversionGoal | None = None,
) -> ConversionGoal:
    """Create a goal, or change one that has no conversions yet (counted conversions keep the
    definition they were counted under: add a new goal instead)."""
    errors = goal_errors(channel=channel, window=window, condition=condition)
    taken = ConversionGoal.objects.filter(experiment=experiment, code=code)
    if goal is not None:
        taken = taken.exclude(pk=goal.pk)
    if taken.exists():
        errors.append(
            ConfigError(
                "code",
                _("The experiment already has a goal %(code)s.") % {"code": code},
                "duplicate_goal",
            )
        )
    if goal is not None and goal.conversions.exists():
        errors.append(
            ConfigError(
                "",
                _("This goal has counted conversions; add a new goal instead of changing it."),
                "goal_in_use",
            )
        )
    if errors:
        raise _refuse(_("The goal cannot be saved."), errors)
    if not isinstance(channel, Channel):
        channel = Channel.objects.get(code=channel)
    values = {
        "code": code,
        "name": name,
        "channel": channel,
        "window": window,
        "condition": condition or None,
        "position": position,
    }
    if goal is None:
        return ConversionGoal.objects.create(experiment=experiment, **values)
    for field, value in values.items():
        setattr(goal, field, value)
    goal.save()
    return goal


def delete_goal(*, goal: ConversionGoal) -> None:
    """Only a goal nothing has converted on yet: counted results are evidence."""
    if goal.conversions.exists():
        message = _("This goal has counted conversions; it cannot be deleted.")
        raise _refuse(message, [ConfigError("", message, "goal_in_use")])
    goal.delete()

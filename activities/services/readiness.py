"""Can this activity run? Its window, its timezone, and every step of its template: a known
processor, a valid config, and each benefit the step names defined on the activity.

Asked before an activity is scheduled or launched (`lifecycle`), by every configuration edit of
an activity that passed it (`configuration`), and by the definition importer. It sits apart
from `configuration` because lifecycle asks it, and configuration moves a started activity's
window through lifecycle.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache
from typing import Any

from django.utils.translation import gettext as _

from activities.engine import registry
from activities.engine.errors import ConfigError
from activities.engine.steps import check_step_shape
from activities.models import Activity, ActivityState

# Activities in these states have passed check_activity; edits must keep them valid.
CHECKED_STATES = (ActivityState.SCHEDULED, ActivityState.RUNNING, ActivityState.PAUSED)


@lru_cache(maxsize=1)
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_errors(name: Any, path: str = "timezone") -> list[ConfigError]:
    # Checked against the IANA list, never handed to ZoneInfo first: a "name" is also a path.
    if isinstance(name, str) and name in _known_timezones():
        return []
    return [
        ConfigError(
            path,
            _("Unknown timezone %(name)r; use an IANA name such as Asia/Shanghai.")
            % {"name": name},
            "unknown_timezone",
        )
    ]


def window_errors(starts_at: dt.datetime | None, ends_at: dt.datetime | None) -> list[ConfigError]:
    errors = []
    for path, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is None:
            errors.append(
                ConfigError(path, _("Set when the activity starts and ends."), "required")
            )
        elif value.tzinfo is None:
            errors.append(ConfigError(path, _("The time needs a timezone."), "naive_datetime"))
    if not errors and starts_at is not None and ends_at is not None and starts_at >= ends_at:
        errors.append(
            ConfigError("ends_at", _("The activity must end after it starts."), "invalid_window")
        )
    return errors


def missing_benefit_error(
    *, path: str, channel: str, index: int, processor: str, code: str
) -> ConfigError:
    return ConfigError(
        path,
        _(
            "Step %(number)d (%(processor)s) of the %(channel)s chain uses benefit %(code)r, "
            "which the activity does not define."
        )
        % {"number": index + 1, "processor": processor, "channel": channel, "code": code},
        "unknown_benefit",
    )


def check_activity(*, activity: Activity) -> list[ConfigError]:
    """Can this activity run? Its window, timezone, and every step of its template: a known
    processor, a valid config, and each benefit the step names defined on the activity.
    Called before scheduling and launching, and by the importer's helpers."""
    errors = window_errors(activity.starts_at, activity.ends_at)
    errors.extend(timezone_errors(activity.timezone))
    codes = set(activity.benefits.values_list("code", flat=True))
    chains = list(
        activity.template.chains.select_related("channel").prefetch_related("steps").order_by("pk")
    )
    if not chains:
        errors.append(
            ConfigError(
                "template",
                _("Template %(template)s has no chains, so the activity would do nothing.")
                % {"template": activity.template.code},
                "empty_template",
            )
        )
    for chain in chains:
        for index, step in enumerate(chain.steps.all()):
            shape = check_step_shape(processor=step.processor, config=step.config, when=step.when)
            if shape:
                errors.append(
                    ConfigError(
                        "template",
                        _("Step %(number)d of the %(channel)s chain is not valid: %(problem)s")
                        % {
                            "number": index + 1,
                            "channel": chain.channel.code,
                            "problem": f"{shape[0].path}: {shape[0].message}",
                        },
                        shape[0].code,
                    )
                )
                continue
            processor_class = registry.get(step.processor)
            assert processor_class is not None  # check_step_shape refused unknown processors
            for code in sorted(processor_class.benefit_codes(step.config) - codes):
                errors.append(
                    missing_benefit_error(
                        path="benefits",
                        channel=chain.channel.code,
                        index=index,
                        processor=step.processor,
                        code=code,
                    )
                )
    return errors

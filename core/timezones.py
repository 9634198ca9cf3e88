"""Operators think in the activity's local wall time; the database holds UTC instants.

A wall time maps to exactly one instant except around a daylight-saving change: in the spring
gap it maps to none (02:30 on the March change in New York never happens) and in the autumn
overlap to two (01:30 on the November change happens at 05:30 and at 06:30 UTC). Both are
refused with a message that says what happened, instead of silently picking one, because a
campaign launched an hour early or late is exactly the failure scheduling must prevent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import InvalidConfiguration

UTC = dt.UTC


class UnknownTimezone(InvalidConfiguration):
    code = "unknown_timezone"


class NonexistentLocalTime(InvalidConfiguration):
    code = "nonexistent_local_time"


class AmbiguousLocalTime(InvalidConfiguration):
    code = "ambiguous_local_time"


def get_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimezone(
            _("%(name)s is not a timezone; use an IANA name such as Asia/Shanghai.")
            % {"name": name}
        ) from None


def validate_timezone_name(value: str) -> None:
    """Model and form validator for IANA timezone names."""
    try:
        get_zone(value)
    except UnknownTimezone as error:
        raise ValidationError(error.message, code=error.code) from None


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(available_timezones())]


def _wall(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _instant(value: dt.datetime) -> str:
    """One instant, in the zone it carries and in UTC: "01:30 EDT (05:30 UTC)"."""
    return f"{value.strftime('%H:%M %Z')} ({value.astimezone(UTC).strftime('%H:%M UTC')})"


def to_utc(wall: dt.datetime, timezone_name: str) -> dt.datetime:
    """The UTC instant an operator means by `wall` in the zone.

    A naive `wall` is read as local time in the zone; an aware one already is an instant and is
    only converted. Raises NonexistentLocalTime in a DST gap and AmbiguousLocalTime in an
    overlap, each with a message an operator can act on.
    """
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    zone = get_zone(timezone_name)
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    # zoneinfo resolves a wall time in a gap with the offset from before (fold=0) or after
    # (fold=1) the change; a real wall time survives the round trip through UTC.
    first_real = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
    second_real = second.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
    if first_real and second_real:
        raise AmbiguousLocalTime(
            _(
                "%(wall)s happens twice in %(zone)s because the clocks go back: at %(first)s "
                "and at %(second)s. Pick a time outside the repeated hour."
            )
            % {
                "wall": _wall(wall),
                "zone": timezone_name,
                "first": _instant(first),
                "second": _instant(second),
            },
            details=[first.astimezone(UTC).isoformat(), second.astimezone(UTC).isoformat()],
        )
    jump = abs(second.utcoffset() - first.utcoffset())  # type: ignore[operator]
    after = first.astimezone(UTC).astimezone(zone)
    raise NonexistentLocalTime(
        _(
            "%(wall)s does not exist in %(zone)s: the clocks jump forward by %(minutes)d minutes "
            "then. Pick a time outside the skipped hour, for example %(after)s."
        )
        % {
            "wall": _wall(wall),
            "zone": timezone_name,
            "minutes": jump.total_seconds() // 60,
            "after": f"{_wall(after)} {after.strftime('%Z')}",
        }
    )


def to_local(instant: dt.datetime, timezone_name: str) -> dt.datetime:
    """The instant as an aware datetime in the zone (for display and for form initial values)."""
    return instant.astimezone(get_zone(timezone_name))


def describe(instant: dt.datetime | None, timezone_name: str) -> str:
    """ "2026-12-01 10:00 CST (Asia/Shanghai) = 2026-12-01 02:00 UTC": what the admin shows."""
    if instant is None:
        return ""
    local = to_local(instant, timezone_name)
    return (
        f"{_wall(local)} {local.strftime('%Z')} ({timezone_name}) = "
        f"{_wall(instant.astimezone(UTC))} UTC"
    )


class LocalDateTimeField(forms.SplitDateTimeField):
    """A date and time typed in the activity's zone; cleans to a naive wall time.

    The zone is another field of the form, so the conversion to UTC happens in
    `LocalDateTimeFormMixin.clean`, which sees both.
    """

    widget = AdminSplitDateTime

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", gettext_lazy("In the activity's timezone; stored in UTC."))
        super().__init__(**kwargs)

    def compress(self, data_list: Any) -> dt.datetime | None:
        if data_list:
            if data_list[0] in self.empty_values:
                raise ValidationError(self.error_messages["invalid_date"], code="invalid_date")
            if data_list[1] in self.empty_values:
                raise ValidationError(self.error_messages["invalid_time"], code="invalid_time")
            return dt.datetime.combine(*data_list)
        return None


class LocalDateTimeFormMixin(forms.BaseForm):
    """For a ModelForm of a model with a timezone name and UTC datetime fields.

    Shows the stored instants as wall times in the model's zone, converts what the operator
    typed back to UTC, and puts DST problems on the field as form errors.
    """

    local_datetime_fields: tuple[str, ...] = ("starts_at", "ends_at")
    timezone_field = "timezone"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = getattr(self, "instance", None)
        zone_name = getattr(instance, self.timezone_field, None)
        if not zone_name:
            return
        for name in self.local_datetime_fields:
            value = getattr(instance, name, None)
            if name not in self.fields or value is None:
                continue
            self.initial[name] = to_local(value, zone_name).replace(tzinfo=None)
            self.fields[name].help_text = describe(value, zone_name)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        zone_name = cleaned.get(self.timezone_field) or getattr(
            getattr(self, "instance", None), self.timezone_field, None
        )
        if not zone_name:
            return cleaned
        for name in self.local_datetime_fields:
            value = cleaned.get(name)
            if value is None:
                continue
            try:
                cleaned[name] = to_utc(value, zone_name)
            except InvalidConfiguration as error:
                field = self.timezone_field if isinstance(error, UnknownTimezone) else name
                if field in self.fields:
                    self.add_error(field, ValidationError(error.message, code=error.code))
                cleaned.pop(name, None)
        return cleaned

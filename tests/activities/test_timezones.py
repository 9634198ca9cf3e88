"""Local wall time in the activity's zone <-> UTC, with DST gaps and overlaps refused."""

import datetime as dt

import pytest
from django import forms

from activities.models import Activity
from core.timezones import (
    AmbiguousLocalTime,
    LocalDateTimeField,
    LocalDateTimeFormMixin,
    NonexistentLocalTime,
    UnknownTimezone,
    describe,
    to_local,
    to_utc,
)

UTC = dt.UTC


def test_shanghai_wall_time_is_eight_hours_ahead_of_utc():
    assert to_utc(dt.datetime(2026, 12, 1, 10, 0), "Asia/Shanghai") == dt.datetime(
        2026, 12, 1, 2, 0, tzinfo=UTC
    )


def test_new_york_offset_follows_daylight_saving():
    # 2026-03-08 is the change: EST (-5) before, EDT (-4) after.
    assert to_utc(dt.datetime(2026, 3, 7, 10, 0), "America/New_York") == dt.datetime(
        2026, 3, 7, 15, 0, tzinfo=UTC
    )
    assert to_utc(dt.datetime(2026, 3, 8, 10, 0), "America/New_York") == dt.datetime(
        2026, 3, 8, 14, 0, tzinfo=UTC
    )


def test_aware_datetime_is_already_an_instant():
    instant = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert to_utc(instant, "America/New_York") == dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_dst_gap_is_refused_with_a_clear_message():
    with pytest.raises(NonexistentLocalTime) as caught:
        to_utc(dt.datetime(2026, 3, 8, 2, 30), "America/New_York")
    assert caught.value.code == "nonexistent_local_time"
    assert caught.value.message == (
        "2026-03-08 02:30 does not exist in America/New_York: the clocks jump forward by 60 "
        "minutes then. Pick a time outside the skipped hour, for example 2026-03-08 03:30 EDT."
    )


def test_dst_overlap_is_refused_naming_both_instants():
    with pytest.raises(AmbiguousLocalTime) as caught:
        to_utc(dt.datetime(2026, 11, 1, 1, 30), "America/New_York")
    assert caught.value.code == "ambiguous_local_time"
    assert caught.value.message == (
        "2026-11-01 01:30 happens twice in America/New_York because the clocks go back: at "
        "01:30 EDT (05:30 UTC) and at 01:30 EST (06:30 UTC). Pick a time outside the repeated "
        "hour."
    )
    assert caught.value.details == ["2026-11-01T05:30:00+00:00", "2026-11-01T06:30:00+00:00"]


def test_times_next_to_the_changes_are_accepted():
    assert to_utc(dt.datetime(2026, 3, 8, 1, 59), "America/New_York") == dt.datetime(
        2026, 3, 8, 6, 59, tzinfo=UTC
    )
    assert to_utc(dt.datetime(2026, 3, 8, 3, 0), "America/New_York") == dt.datetime(
        2026, 3, 8, 7, 0, tzinfo=UTC
    )
    assert to_utc(dt.datetime(2026, 11, 1, 2, 0), "America/New_York") == dt.datetime(
        2026, 11, 1, 7, 0, tzinfo=UTC
    )


def test_unknown_zone_is_refused():
    with pytest.raises(UnknownTimezone) as caught:
        to_utc(dt.datetime(2026, 1, 1), "Mars/Olympus")
    assert caught.value.message == (
        "Mars/Olympus is not a timezone; use an IANA name such as Asia/Shanghai."
    )


def test_round_trip_and_local_and_utc_text():
    instant = dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert to_local(instant, "Asia/Shanghai").replace(tzinfo=None) == dt.datetime(
        2026, 12, 1, 10, 0
    )
    assert describe(instant, "Asia/Shanghai") == (
        "2026-12-01 10:00 CST (Asia/Shanghai) = 2026-12-01 02:00 UTC"
    )
    assert describe(None, "Asia/Shanghai") == ""


class WindowForm(LocalDateTimeFormMixin, forms.ModelForm):
    starts_at = LocalDateTimeField(required=False)
    ends_at = LocalDateTimeField(required=False)

    class Meta:
        model = Activity
        fields = ["timezone", "starts_at", "ends_at"]


def form_data(zone, start, end):
    return {
        "timezone": zone,
        "starts_at_0": start[0],
        "starts_at_1": start[1],
        "ends_at_0": end[0],
        "ends_at_1": end[1],
    }


@pytest.mark.django_db
def test_form_converts_local_input_to_utc():
    form = WindowForm(
        data=form_data("Asia/Shanghai", ("2026-12-01", "10:00"), ("2026-12-31", "23:59:59"))
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["starts_at"] == dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert form.cleaned_data["ends_at"] == dt.datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)


@pytest.mark.django_db
def test_form_puts_dst_gap_error_on_the_field():
    form = WindowForm(
        data=form_data("America/New_York", ("2026-03-08", "02:30"), ("2026-03-31", "12:00"))
    )
    assert not form.is_valid()
    assert form.errors["starts_at"] == [
        "2026-03-08 02:30 does not exist in America/New_York: the clocks jump forward by 60 "
        "minutes then. Pick a time outside the skipped hour, for example 2026-03-08 03:30 EDT."
    ]
    assert "ends_at" not in form.errors


def test_form_shows_stored_instants_as_local_wall_time():
    activity = Activity(
        timezone="Asia/Shanghai",
        starts_at=dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
        ends_at=dt.datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC),
    )
    form = WindowForm(instance=activity)
    assert form.initial["starts_at"] == dt.datetime(2026, 12, 1, 10, 0)
    assert form.fields["starts_at"].help_text == (
        "2026-12-01 10:00 CST (Asia/Shanghai) = 2026-12-01 02:00 UTC"
    )

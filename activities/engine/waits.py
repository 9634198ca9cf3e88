"""What a wait step asks of the runner, and the clock arithmetic behind it."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DURATION_PATTERN = "^[1-9][0-9]{0,5}[smhd]$"
TIME_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9]$"
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DURATION = re.compile(DURATION_PATTERN)
# Longer waits belong to a segment and a broadcast, not to a run held open.
MAX_WAIT = dt.timedelta(days=400)

# The processors whose steps make a run wait (the admin counts customers at each).
WAIT_PROCESSORS = ("wait_for", "wait_until", "wait_for_event")

# `wait.outcome` after a wait step.
ELAPSED = "elapsed"
EVENT = "event"
TIMEOUT = "timeout"


def parse_duration(text: str) -> dt.timedelta:
    """`30s`, `30m`, `12h`, `2d` -> a timedelta; ValueError for anything else or too long."""
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 30m, 12h or 2d.")
    duration = dt.timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
    if duration > MAX_WAIT:
        raise ValueError(f"{text!r} is longer than {MAX_WAIT.days} days.")
    return duration


def zone_or(name: str, fallback: str) -> ZoneInfo:
    """The customer's zone when it is a real one, else the activity's."""
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def next_local_time(*, now: dt.datetime, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The first instant after `now` whose wall clock in `zone` reads `at`.

    The offset is the one in force on the target day, so a daylight-saving change between
    now and then still lands on the wall time. A wall time the spring change skips resolves
    to the same distance past the change (02:30 -> 03:30); in the autumn overlap the first
    of the two instants is taken.
    """
    local_now = now.astimezone(zone)
    day = local_now.date()
    for _ in range(3):
        naive = dt.datetime.combine(day, at)
        candidate = naive.replace(tzinfo=zone, fold=0)
        # Round-trip through UTC: a skipped wall time comes back shifted past the change.
        candidate = candidate.astimezone(dt.UTC)
        if candidate > now:
            return candidate
        day += dt.timedelta(days=1)
    raise AssertionError("unreachable: a wall time recurs within two days")


@dataclass
class Suspension:
    """Set on the context by a wait step: the run stops after it and waits in PostgreSQL."""

    due_at: dt.datetime
    channel_code: str | None = None
    # Payload values the awaited event must carry (copied from the triggering event).
    match: dict[str, Any] = field(default_factory=dict)
    # Filled by the runner: the index of the wait step.
    step: int = 0

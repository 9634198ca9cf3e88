"""Broadcasts on the clock: django-celery-beat's real models (ClockedSchedule, CrontabSchedule
with its own timezone), time moved with time-machine.

The birthday rule: a customer is greeted when, in their own timezone (or the broadcast's when
theirs is missing or not a zone), it is `birthday_hour`:00 on their birthday; 29 February
birthdays are greeted on 28 February in years without one. Members with no valid birthday are
recorded once, on the standing broadcast, as skipped.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections import Counter

import pytest
import time_machine
from django_celery_beat.models import PeriodicTask

from core.errors import InvalidConfiguration, TransitionNotAllowed
from notifications.enqueue import FIRE_STANDING_BROADCAST, LAUNCH_BROADCAST
from notifications.models import Broadcast, BroadcastState, Delivery
from notifications.services import broadcasts, planning, sweeper
from notifications.services.scheduling import periodic_task
from segments.models import Customer
from tests.notifications.factories import BroadcastFactory, make_segment

UTC = dt.UTC


def customer(external_id: str, *, tz: str = "", birthday: dt.date | None = None, **extra):
    return Customer.objects.create(
        external_id=external_id,
        name=external_id.title(),
        email=f"{external_id}@example.test",
        email_consent=True,
        timezone=tz,
        birthday=birthday,
        **extra,
    )


@pytest.mark.django_db
def test_a_one_off_is_a_clocked_beat_task_and_its_launch_is_idempotent(time_machine):
    time_machine.move_to(dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC), tick=False)
    send_at = dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    broadcast = BroadcastFactory(send_at=send_at)
    broadcasts.schedule_broadcast(broadcast_id=broadcast.pk)
    task = periodic_task(broadcast_id=broadcast.pk)
    assert (task.task, task.one_off, task.clocked.clocked_time) == (LAUNCH_BROADCAST, True, send_at)
    assert task.args == f"[{broadcast.pk}]"

    assert not broadcasts.launch_broadcast(broadcast_id=broadcast.pk)  # not due yet
    time_machine.move_to(send_at, tick=False)
    assert broadcasts.launch_broadcast(broadcast_id=broadcast.pk)
    assert not broadcasts.launch_broadcast(broadcast_id=broadcast.pk)  # beat fired twice
    broadcast.refresh_from_db()
    assert broadcast.state == BroadcastState.SENDING
    assert periodic_task(broadcast_id=broadcast.pk) is None


@pytest.mark.django_db
def test_a_missed_launch_happens_on_the_sweep(time_machine):
    time_machine.move_to(dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC), tick=False)
    broadcast = BroadcastFactory(send_at=dt.datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    broadcasts.schedule_broadcast(broadcast_id=broadcast.pk)
    time_machine.move_to(dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC), tick=False)
    assert sweeper.sweep()["launched"] == 1
    assert Broadcast.objects.get(pk=broadcast.pk).state == BroadcastState.SENDING


@pytest.mark.django_db
def test_scheduling_refuses_a_past_start_and_a_bad_crontab(time_machine):
    time_machine.move_to(dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC), tick=False)
    past = BroadcastFactory(send_at=dt.datetime(2026, 11, 30, tzinfo=UTC))
    with pytest.raises(InvalidConfiguration) as raised:
        broadcasts.schedule_broadcast(broadcast_id=past.pk)
    assert [d["path"] for d in raised.value.details] == ["send_at"]
    bad = BroadcastFactory(kind="recurring", cron="0 25 * * *")
    with pytest.raises(InvalidConfiguration) as raised:
        broadcasts.schedule_broadcast(broadcast_id=bad.pk)
    assert [d["path"] for d in raised.value.details] == ["cron"]
    with pytest.raises(TransitionNotAllowed):
        broadcasts.start_broadcast(broadcast_id=bad.pk)


@pytest.mark.django_db
def test_a_recurring_broadcast_runs_on_a_crontab_in_its_own_timezone(time_machine):
    broadcast = BroadcastFactory(kind="recurring", cron="0 9 * * mon", timezone="Asia/Shanghai")
    broadcasts.schedule_broadcast(broadcast_id=broadcast.pk)
    task = periodic_task(broadcast_id=broadcast.pk)
    assert task.task == FIRE_STANDING_BROADCAST
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "9", "mon")
    assert str(task.crontab.timezone) == "Asia/Shanghai"
    # Monday 2026-12-07 09:00 in Shanghai is 01:00 UTC.
    last_run = dt.datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    time_machine.move_to(dt.datetime(2026, 12, 7, 0, 59, tzinfo=UTC), tick=False)
    assert not task.schedule.is_due(last_run).is_due
    time_machine.move_to(dt.datetime(2026, 12, 7, 1, 0, 30, tzinfo=UTC), tick=False)
    assert task.schedule.is_due(last_run).is_due
    first = broadcasts.fire_standing_broadcast(broadcast_id=broadcast.pk)
    again = broadcasts.fire_standing_broadcast(broadcast_id=broadcast.pk)  # a second beat
    assert first is not None and again is None
    assert first.occurrence == dt.datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    assert first.state == BroadcastState.SENDING


def standing_birthday(segment) -> Broadcast:
    parent = BroadcastFactory(kind="birthday", birthday_hour=9, timezone="UTC", segment=segment)
    Broadcast.objects.filter(pk=parent.pk).update(state="scheduled")
    return Broadcast.objects.get(pk=parent.pk)


@pytest.mark.django_db
def test_a_birthday_window_reaches_back_over_missed_ticks():
    shanghai = customer("sh", tz="Asia/Shanghai", birthday=dt.date(1990, 12, 2))
    parent = standing_birthday(make_segment([shanghai.pk], code="bday"))
    with time_machine.travel(dt.datetime(2026, 12, 2, 0, 45, tzinfo=UTC), tick=False):
        first = broadcasts.fire_standing_broadcast(broadcast_id=parent.pk)
    # Beat is down from 00:45 to 03:00; 09:00 in Shanghai (01:00 UTC) falls in between.
    with time_machine.travel(dt.datetime(2026, 12, 2, 3, 0, 10, tzinfo=UTC), tick=False):
        late = broadcasts.fire_standing_broadcast(broadcast_id=parent.pk)
    assert late.window_start == first.occurrence
    for occurrence in (first, late):
        planning.plan_next_page(broadcast_id=occurrence.pk)
    assert not Delivery.objects.filter(broadcast=first).exists()
    assert list(Delivery.objects.filter(broadcast=late).values_list("customer_id", "status")) == [
        (shanghai.pk, "queued")
    ]


def simulate_beat(task: PeriodicTask, start: dt.datetime, end: dt.datetime) -> list[int]:
    """Walk the clock in 5-minute steps; fire whenever beat's schedule says the task is due."""
    fired: list[int] = []
    last_run = start
    now = start
    while now <= end:
        with time_machine.travel(now, tick=False):
            if task.schedule.is_due(last_run).is_due:
                occurrence = broadcasts.fire_standing_broadcast(broadcast_id=task_broadcast(task))
                if occurrence is not None:
                    fired.append(occurrence.pk)
                last_run = now
        now += dt.timedelta(minutes=5)
    return fired


def task_broadcast(task: PeriodicTask) -> int:
    return int(task.args.strip("[]"))


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_birthday_greetings_at_nine_local_across_three_timezones(smtp, celery_worker):
    birthday = dt.date(1990, 2, 28)
    greeted = {
        "shanghai": customer("shanghai", tz="Asia/Shanghai", birthday=birthday),
        "london": customer("london", tz="Europe/London", birthday=birthday.replace(year=1985)),
        "los-angeles": customer("los-angeles", tz="America/Los_Angeles", birthday=birthday),
        # 2027 has no 29 February: greeted on the 28th.
        "leapling": customer("leapling", tz="Europe/London", birthday=dt.date(1996, 2, 29)),
    }
    others = [
        customer("next-week", tz="Asia/Shanghai", birthday=dt.date(1990, 3, 7)),
        customer("unknown", tz="Europe/London", birthday=None),
        customer(
            "garbled",
            tz="America/Los_Angeles",
            birthday=None,
            quality_flags=[{"field": "birthday", "code": "invalid_date", "value": "1990-13-45"}],
        ),
    ]
    segment = make_segment([c.pk for c in [*greeted.values(), *others]], code="birthdays")
    parent = BroadcastFactory(
        kind="birthday",
        birthday_hour=9,
        timezone="UTC",
        segment=segment,
        template__subject="Happy birthday, {{ customer.name }}",
    )
    broadcasts.schedule_broadcast(broadcast_id=parent.pk)
    task = periodic_task(broadcast_id=parent.pk)
    assert (task.crontab.minute, str(task.crontab.timezone), task.task) == (
        "*/15",
        "UTC",
        FIRE_STANDING_BROADCAST,
    )

    fired = simulate_beat(
        task,
        dt.datetime(2027, 2, 27, 12, 0, tzinfo=UTC),
        dt.datetime(2027, 3, 1, 12, 0, tzinfo=UTC),
    )
    assert len(fired) == 48 * 4  # every 15 minutes after the start

    deadline = time.monotonic() + 120
    while Broadcast.objects.filter(parent=parent, state=BroadcastState.SENDING).exists():
        assert time.monotonic() < deadline, "occurrences still sending"
        time.sleep(0.2)

    sent = Delivery.objects.filter(broadcast__parent=parent, status="sent").select_related(
        "customer", "broadcast"
    )
    assert Counter(d.customer.external_id for d in sent) == dict.fromkeys(greeted, 1)
    for delivery in sent:
        local = delivery.broadcast.occurrence.astimezone(
            zoneinfo.ZoneInfo(delivery.customer.timezone)
        )
        assert (local.date(), local.time()) == (dt.date(2027, 2, 28), dt.time(9, 0))
    # Occurrences that planned nobody are gone; the rest completed.
    remaining = Broadcast.objects.filter(parent=parent)
    assert {b.state for b in remaining} == {BroadcastState.COMPLETED}
    assert sorted(b.occurrence.hour for b in remaining) == [1, 9, 17]  # Shanghai, London, LA

    assert sorted(smtp.by_recipient().items()) == sorted(
        (f"{name}@example.test", 1) for name in greeted
    )
    assert all(m.subject.startswith("Happy birthday, ") for m in smtp.snapshot())

    skipped = dict(
        Delivery.objects.filter(broadcast=parent).values_list("customer__external_id", "reason")
    )
    assert skipped == {"unknown": "no_birthday", "garbled": "invalid_birthday"}
    parent.refresh_from_db()
    assert parent.skipped_by_reason == {"no_birthday": 1, "invalid_birthday": 1}
    assert parent.state == BroadcastState.SCHEDULED

    broadcasts.cancel_broadcast(broadcast_id=parent.pk)
    assert periodic_task(broadcast_id=parent.pk) is None


@pytest.mark.django_db
def test_leap_day_birthdays_on_the_day_itself_in_leap_years():
    leapling = customer("leapling", tz="UTC", birthday=dt.date(1996, 2, 29))
    parent = standing_birthday(make_segment([leapling.pk], code="leap"))
    found = {}
    for day in (dt.date(2028, 2, 28), dt.date(2028, 2, 29)):
        at = dt.datetime.combine(day, dt.time(9, 0), tzinfo=UTC)
        with time_machine.travel(at, tick=False):
            occurrence = broadcasts.fire_standing_broadcast(broadcast_id=parent.pk)
        planning.plan_next_page(broadcast_id=occurrence.pk)
        found[day] = Delivery.objects.filter(broadcast=occurrence).count()
    assert found == {dt.date(2028, 2, 28): 0, dt.date(2028, 2, 29): 1}

"""Launch and end on the clock, through django-celery-beat's real models and DatabaseScheduler.

Time is moved with time-machine; beat's scheduler ticks at the travelled time, what it would
send to the broker is recorded, and the recorded tasks run in-process (a worker cannot share the
travelled clock). Transactional tests: the scheduler commits and reconnects like the real beat.
"""

import datetime as dt

import pytest
import time_machine
from django_celery_beat.models import ClockedSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from django_fsm_log.models import StateLog
from structlog.testing import capture_logs

from activities import tasks
from activities.enqueue import END_ACTIVITY, LAUNCH_ACTIVITY
from activities.models import ActivityState
from activities.services import lifecycle
from activities.services.scheduling import planned_tasks
from config.celery import app as celery_app
from core.timezones import to_utc
from tests.activities.lifecycle_factories import approved, valid_draft

pytestmark = pytest.mark.django_db(transaction=True)

UTC = dt.UTC
LIFECYCLE_TASKS = {LAUNCH_ACTIVITY, END_ACTIVITY}


class RecordingScheduler(DatabaseScheduler):
    """Beat's own scheduler; what it would publish is recorded instead of sent."""

    def __init__(self, *args, **kwargs):
        self.sent: list[tuple[str, tuple]] = []
        super().__init__(*args, **kwargs)
        self.__dict__["producer"] = None  # no broker connection: apply_async records

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        entry = self.reserve(entry) if advance else entry
        self.sent.append((entry.task, tuple(entry.args)))


class Beat:
    """A beat process: `wake` is one pass of its loop, sending everything due right now."""

    running: list["Beat"] = []

    def __init__(self):
        self.scheduler = RecordingScheduler(app=celery_app)
        Beat.running.append(self)

    def wake(self) -> list[tuple[str, tuple]]:
        start = len(self.scheduler.sent)
        for _ in range(100):
            if self.scheduler.tick() != 0:
                break
        return [sent for sent in self.scheduler.sent[start:] if sent[0] in LIFECYCLE_TASKS]


def run(sent):
    """What a worker would do with the messages: run each task once per message."""
    by_name = {task.name: task for task in (tasks.launch_activity_task, tasks.end_activity_task)}
    return [by_name[name].apply(args=args).get() for name, args in sent]


def launches(activity):
    return list(
        StateLog.objects.for_(activity)
        .filter(transition="launch")
        .values_list("timestamp", flat=True)
    )


@pytest.fixture(autouse=True)
def stop_beats():
    """Shut beats down like `celery beat` does (a last sync) while the test database exists."""
    yield
    while Beat.running:
        scheduler = Beat.running.pop().scheduler
        scheduler.close()
        # Entries whose rows the services deleted stay dirty in beat's memory; without this the
        # exit-time finalizer retries them against a database that no longer exists.
        scheduler._finalize.cancel()


@pytest.fixture
def clock():
    with time_machine.travel(dt.datetime(2026, 11, 30, 0, 0, tzinfo=UTC), tick=False) as t:
        yield t


def shanghai_campaign():
    """10:00 on 1 December to the last second of the year, Shanghai time."""
    return valid_draft(
        timezone="Asia/Shanghai",
        starts_at=to_utc(dt.datetime(2026, 12, 1, 10, 0), "Asia/Shanghai"),
        ends_at=to_utc(dt.datetime(2026, 12, 31, 23, 59, 59), "Asia/Shanghai"),
    )


def test_shanghai_10_00_launches_at_02_00_utc_and_ends_on_time(clock):
    activity = shanghai_campaign()
    lifecycle.schedule_activity(activity=approved(activity))
    tasks = planned_tasks(activity_id=activity.pk)
    assert tasks["launch"].clocked.clocked_time == dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert tasks["end"].clocked.clocked_time == dt.datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)
    beat = Beat()

    clock.move_to(dt.datetime(2026, 12, 1, 1, 59, 59, tzinfo=UTC))
    assert beat.wake() == []
    clock.move_to(dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    sent = beat.wake()
    assert sent == [(LAUNCH_ACTIVITY, (activity.pk,))]
    assert run(sent) == [True]
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    assert launches(activity) == [dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC)]
    assert sorted(planned_tasks(activity_id=activity.pk)) == ["end"]

    clock.move_to(dt.datetime(2026, 12, 1, 2, 1, tzinfo=UTC))
    assert beat.wake() == []

    clock.move_to(dt.datetime(2026, 12, 31, 15, 59, 58, tzinfo=UTC))
    assert beat.wake() == []
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    clock.move_to(dt.datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC))
    sent = beat.wake()
    assert sent == [(END_ACTIVITY, (activity.pk,))]
    assert run(sent) == [True]
    activity.refresh_from_db()
    assert (activity.state, activity.state_reason) == (ActivityState.ENDED, "window closed")
    assert not PeriodicTask.objects.filter(description=activity.code).exists()
    assert not ClockedSchedule.objects.exists()


def test_double_launch_from_two_beats_is_a_no_op(clock):
    activity = shanghai_campaign()
    lifecycle.schedule_activity(activity=approved(activity))
    first, second = Beat(), Beat()
    # Both have loaded the one-off before it is due, as two beats running side by side have.
    clock.move_to(dt.datetime(2026, 12, 1, 1, 59, 59, tzinfo=UTC))
    assert first.wake() + second.wake() == []
    clock.move_to(dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    sent = first.wake() + second.wake()
    assert sent == [(LAUNCH_ACTIVITY, (activity.pk,))] * 2
    assert run(sent) == [True, False]
    # A beat restarted within seconds fires the one-off again (celery-beat #828): still one launch.
    assert run([(LAUNCH_ACTIVITY, (activity.pk,))]) == [False]
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    assert len(launches(activity)) == 1


def test_launch_missed_while_beat_was_down_happens_on_catch_up(clock):
    activity = shanghai_campaign()
    lifecycle.schedule_activity(activity=approved(activity))
    # Beat is down from before 02:00 UTC until 02:30.
    clock.move_to(dt.datetime(2026, 12, 1, 2, 30, tzinfo=UTC))
    with capture_logs() as logs:
        result = tasks.catch_up_activities_task.apply().get()
    assert result == {"ended": [], "launched": [activity.code], "exhausted": []}
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    assert launches(activity) == [dt.datetime(2026, 12, 1, 2, 30, tzinfo=UTC)]
    caught_up = [log for log in logs if log["event"] == "activity_launch_caught_up"]
    assert caught_up == [
        {
            "event": "activity_launch_caught_up",
            "log_level": "warning",
            "activity": activity.code,
            "due_at": "2026-12-01T02:00:00+00:00",
        }
    ]
    # Beat is back; its overdue one-off (if it still has it) changes nothing.
    assert run([(LAUNCH_ACTIVITY, (activity.pk,))]) == [False]
    assert Beat().wake() == []
    assert len(launches(activity)) == 1


def test_window_that_passed_entirely_while_beat_was_down_ends_without_running(clock):
    activity = valid_draft(
        starts_at=dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
        ends_at=dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
    )
    lifecycle.schedule_activity(activity=approved(activity))
    clock.move_to(dt.datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    with capture_logs() as logs:
        result = lifecycle.catch_up()
    assert result == {"ended": [activity.code], "launched": [], "exhausted": []}
    activity.refresh_from_db()
    assert (activity.state, activity.state_reason) == (ActivityState.ENDED, "window closed")
    assert launches(activity) == []
    assert [log["event"] for log in logs if log["event"].endswith("caught_up")] == [
        "activity_end_caught_up"
    ]
    assert lifecycle.catch_up() == {"ended": [], "launched": [], "exhausted": []}


def test_new_york_across_the_march_change_launches_at_the_right_instant(clock):
    # Scheduled while New York is on EST (-5); 10:00 on 9 March is EDT (-4), i.e. 14:00 UTC.
    clock.move_to(dt.datetime(2026, 3, 6, 12, 0, tzinfo=UTC))
    activity = valid_draft(
        timezone="America/New_York",
        starts_at=to_utc(dt.datetime(2026, 3, 9, 10, 0), "America/New_York"),
        ends_at=to_utc(dt.datetime(2026, 3, 20, 18, 0), "America/New_York"),
    )
    lifecycle.schedule_activity(activity=approved(activity))
    beat = Beat()
    clock.move_to(dt.datetime(2026, 3, 9, 13, 59, 59, tzinfo=UTC))
    assert beat.wake() == []
    clock.move_to(dt.datetime(2026, 3, 9, 14, 0, tzinfo=UTC))
    assert run(beat.wake()) == [True]
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    assert launches(activity) == [dt.datetime(2026, 3, 9, 14, 0, tzinfo=UTC)]
    assert planned_tasks(activity_id=activity.pk)["end"].clocked.clocked_time == dt.datetime(
        2026, 3, 20, 22, 0, tzinfo=UTC
    )


def test_rescheduling_moves_the_launch_the_running_beat_sees(clock):
    activity = shanghai_campaign()
    lifecycle.schedule_activity(activity=approved(activity))
    beat = Beat()
    clock.move_to(dt.datetime(2026, 12, 1, 1, 58, tzinfo=UTC))
    assert beat.wake() == []
    later = dt.datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    lifecycle.reschedule_activity(activity=activity, starts_at=later, ends_at=activity.ends_at)
    clock.move_to(dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    assert beat.wake() == []
    clock.move_to(later)
    assert run(beat.wake()) == [True]
    activity.refresh_from_db()
    assert launches(activity) == [later]


def test_a_stale_launch_task_fired_before_the_new_start_changes_nothing(clock):
    activity = shanghai_campaign()
    lifecycle.schedule_activity(activity=approved(activity))
    lifecycle.reschedule_activity(
        activity=activity,
        starts_at=dt.datetime(2026, 12, 2, 2, 0, tzinfo=UTC),
        ends_at=activity.ends_at,
    )
    clock.move_to(dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    assert run([(LAUNCH_ACTIVITY, (activity.pk,))]) == [False]
    activity.refresh_from_db()
    assert activity.state == ActivityState.SCHEDULED


def test_unscheduled_activity_is_not_launched_by_beat(clock):
    activity = shanghai_campaign()
    lifecycle.schedule_activity(activity=approved(activity))
    beat = Beat()
    clock.move_to(dt.datetime(2026, 12, 1, 1, 58, tzinfo=UTC))
    beat.wake()
    lifecycle.unschedule_activity(activity=activity)
    clock.move_to(dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    assert beat.wake() == []
    assert lifecycle.catch_up()["launched"] == []
    activity.refresh_from_db()
    assert activity.state == ActivityState.DRAFT


def test_catch_up_is_on_beats_schedule_every_minute():
    entry = celery_app.conf.beat_schedule["catch-up-activities"]
    assert entry["task"] == "activities.tasks.catch_up_activities_task"
    assert entry["schedule"].run_every == dt.timedelta(minutes=1)

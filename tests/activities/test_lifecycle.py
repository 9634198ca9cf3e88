"""Lifecycle services: transitions under a row lock, permissions, idempotency, and the budget
and stock guards that pause or end an activity at the grant that exhausts it."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied
from django.db import connection
from django_fsm_log.models import StateLog
from structlog.testing import capture_logs

from activities.models import Activity, ActivityState, ChainRun, Grant, RunOutcome
from activities.services import lifecycle
from activities.services.events import accept_event, process_event
from activities.services.scheduling import planned_tasks
from config.celery import app as celery_app
from core.errors import InvalidConfiguration, TransitionNotAllowed
from tests.activities.lifecycle_factories import approved, valid_draft
from tests.factories import (
    ActivityFactory,
    BenefitFactory,
    ChainFactory,
    ChannelFactory,
    StepFactory,
    TemplateFactory,
    make_api_key,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def eager_tasks():
    """Tasks enqueued on commit run inline (the guard's exhaust task)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def draft(**kwargs):
    return valid_draft(**kwargs)


def operator(*codenames):
    user = User.objects.create_user(username=f"op-{'-'.join(codenames) or 'none'}")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="activities", codename__in=codenames)
    )
    return User.objects.get(pk=user.pk)  # fresh: permissions are cached per instance


def transitions(activity):
    return list(
        StateLog.objects.for_(activity).order_by("pk").values_list("transition", "description")
    )


# --- schedule / unschedule / reschedule --------------------------------------------------------


def test_schedule_plans_launch_and_end_on_beat():
    activity = draft()
    returned = lifecycle.schedule_activity(activity=approved(activity))
    assert returned.state == activity.state == ActivityState.SCHEDULED
    tasks = planned_tasks(activity_id=activity.pk)
    assert sorted(tasks) == ["end", "launch"]
    assert tasks["launch"].clocked.clocked_time == activity.starts_at
    assert tasks["end"].clocked.clocked_time == activity.ends_at
    assert tasks["launch"].task == "activities.tasks.launch_activity_task"
    assert tasks["end"].task == "activities.tasks.end_activity_task"
    assert all(t.one_off and t.enabled and t.args == f"[{activity.pk}]" for t in tasks.values())


def test_schedule_with_window_already_open_launches_now():
    activity = draft(starts_at=NOW - dt.timedelta(hours=1))
    lifecycle.schedule_activity(activity=approved(activity))
    assert activity.state == ActivityState.RUNNING
    assert sorted(planned_tasks(activity_id=activity.pk)) == ["end"]
    assert transitions(activity) == [
        ("schedule", None),
        ("launch", "the window was already open"),
    ]


def test_schedule_refuses_a_window_that_is_over():
    activity = draft(
        timezone="Asia/Shanghai",
        starts_at=NOW - dt.timedelta(days=2),
        ends_at=dt.datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
    )
    with pytest.raises(InvalidConfiguration) as caught:
        lifecycle.schedule_activity(activity=approved(activity))
    message = (
        "The window is over: it ended at 2026-11-20 11:00 CST (Asia/Shanghai) = "
        "2026-11-20 03:00 UTC."
    )
    assert caught.value.message == f"Activity {activity.code} cannot be scheduled: {message}"
    assert caught.value.details == [{"path": "ends_at", "message": message, "code": "window_over"}]
    activity.refresh_from_db()
    assert activity.state == ActivityState.DRAFT
    assert planned_tasks(activity_id=activity.pk) == {}


def test_schedule_refuses_a_missing_window():
    activity = draft(starts_at=None, ends_at=None)
    with pytest.raises(InvalidConfiguration) as caught:
        lifecycle.schedule_activity(activity=approved(activity))
    assert caught.value.details == [
        {"path": path, "message": "Set when the activity starts and ends.", "code": "required"}
        for path in ("starts_at", "ends_at")
    ]


def test_schedule_refuses_an_activity_that_would_do_nothing():
    activity = ActivityFactory(starts_at=NOW + dt.timedelta(days=1))
    with pytest.raises(InvalidConfiguration) as caught:
        lifecycle.schedule_activity(activity=approved(activity))
    assert [p["code"] for p in caught.value.details] == ["empty_template"]
    activity.refresh_from_db()
    assert activity.state == ActivityState.DRAFT


def test_schedule_twice_is_refused_with_the_state_named():
    activity = draft()
    lifecycle.schedule_activity(activity=approved(activity))
    with pytest.raises(TransitionNotAllowed) as caught:
        lifecycle.schedule_activity(activity=approved(activity))
    assert caught.value.message == (
        f"Activity {activity.code} is scheduled; only draft activities can be scheduled."
    )


def test_unschedule_removes_the_beat_tasks():
    activity = draft()
    lifecycle.schedule_activity(activity=approved(activity))
    lifecycle.unschedule_activity(activity=activity)
    assert activity.state == ActivityState.DRAFT
    assert planned_tasks(activity_id=activity.pk) == {}
    from django_celery_beat.models import ClockedSchedule

    assert not ClockedSchedule.objects.exists()


def test_reschedule_moves_the_beat_tasks():
    activity = draft()
    lifecycle.schedule_activity(activity=approved(activity))
    before = planned_tasks(activity_id=activity.pk)
    starts, ends = NOW + dt.timedelta(days=3), NOW + dt.timedelta(days=5)
    lifecycle.reschedule_activity(activity=activity, starts_at=starts, ends_at=ends)
    after = planned_tasks(activity_id=activity.pk)
    assert after["launch"].clocked.clocked_time == starts
    assert after["end"].clocked.clocked_time == ends
    assert {k: t.pk for k, t in after.items()} == {k: t.pk for k, t in before.items()}
    assert activity.config_version == 2


def test_reschedule_of_a_running_activity_moves_only_its_end():
    activity = draft(starts_at=NOW - dt.timedelta(hours=1))
    lifecycle.schedule_activity(activity=approved(activity))
    later = NOW + dt.timedelta(days=20)
    lifecycle.reschedule_activity(activity=activity, starts_at=activity.starts_at, ends_at=later)
    assert planned_tasks(activity_id=activity.pk)["end"].clocked.clocked_time == later
    with pytest.raises(TransitionNotAllowed) as caught:
        lifecycle.reschedule_activity(activity=activity, starts_at=NOW, ends_at=later)
    assert caught.value.message == f"Activity {activity.code} has started; only its end can move."


# --- launch / end: idempotent ------------------------------------------------------------------


def test_launch_is_idempotent(frozen):
    activity = draft()
    lifecycle.schedule_activity(activity=approved(activity))
    frozen.move_to(activity.starts_at)
    assert lifecycle.launch_activity(activity_id=activity.pk) is True
    assert lifecycle.launch_activity(activity_id=activity.pk) is False
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    assert [t for t, _ in transitions(activity)] == ["schedule", "launch"]
    assert sorted(planned_tasks(activity_id=activity.pk)) == ["end"]


def test_launch_before_the_start_changes_nothing():
    activity = draft()
    lifecycle.schedule_activity(activity=approved(activity))
    assert lifecycle.launch_activity(activity_id=activity.pk) is False
    activity.refresh_from_db()
    assert activity.state == ActivityState.SCHEDULED


def test_end_is_idempotent_and_removes_the_beat_tasks(frozen):
    activity = draft()
    lifecycle.schedule_activity(activity=approved(activity))
    frozen.move_to(activity.starts_at)
    lifecycle.launch_activity(activity_id=activity.pk)
    assert lifecycle.end_activity(activity_id=activity.pk, reason="stopped early") is True
    assert lifecycle.end_activity(activity_id=activity.pk, reason="again") is False
    activity.refresh_from_db()
    assert (activity.state, activity.state_reason) == (ActivityState.ENDED, "stopped early")
    assert planned_tasks(activity_id=activity.pk) == {}


def test_end_if_due_waits_for_the_end_of_the_window(frozen):
    activity = draft(starts_at=NOW - dt.timedelta(hours=1))
    lifecycle.schedule_activity(activity=approved(activity))
    assert lifecycle.end_activity(activity_id=activity.pk, if_due=True) is False
    frozen.move_to(activity.ends_at)
    assert lifecycle.end_activity(activity_id=activity.pk, reason="window closed", if_due=True)
    activity.refresh_from_db()
    assert (activity.state, activity.state_reason) == (ActivityState.ENDED, "window closed")


# --- pause / resume / archive -----------------------------------------------------------------


def test_pause_and_resume_record_reason_and_user():
    activity = draft(starts_at=NOW - dt.timedelta(hours=1))
    lifecycle.schedule_activity(activity=approved(activity))
    user = operator("pause_activity")
    lifecycle.pause_activity(activity=activity, by=user, reason="checking a complaint")
    assert (activity.state, activity.state_reason) == (
        ActivityState.PAUSED,
        "checking a complaint",
    )
    log = StateLog.objects.for_(activity).get(transition="pause")
    assert (log.by, log.description) == (user, "checking a complaint")
    lifecycle.resume_activity(activity=activity, by=user)
    assert (activity.state, activity.state_reason) == (ActivityState.RUNNING, "")


def test_resume_refused_once_the_window_is_over(frozen):
    activity = draft(starts_at=NOW - dt.timedelta(hours=1), ends_at=NOW + dt.timedelta(hours=1))
    lifecycle.schedule_activity(activity=approved(activity))
    lifecycle.pause_activity(activity=activity)
    frozen.move_to(NOW + dt.timedelta(hours=2))
    with pytest.raises(TransitionNotAllowed) as caught:
        lifecycle.resume_activity(activity=activity)
    assert caught.value.message == (
        f"Activity {activity.code} cannot resume: its window ended at "
        "2026-11-20 13:00 CST (Asia/Shanghai) = 2026-11-20 05:00 UTC."
    )


def test_archive_only_from_draft_or_ended():
    activity = draft(starts_at=NOW - dt.timedelta(hours=1))
    lifecycle.schedule_activity(activity=approved(activity))
    with pytest.raises(TransitionNotAllowed) as caught:
        lifecycle.archive_activity(activity=activity)
    assert caught.value.message == (
        f"Activity {activity.code} is running; only draft or ended activities can be archived."
    )
    lifecycle.end_activity(activity_id=activity.pk)
    lifecycle.archive_activity(activity=activity)
    assert activity.state == ActivityState.ARCHIVED


# --- permissions --------------------------------------------------------------------------------


def test_a_user_without_the_permission_is_refused():
    activity = draft()
    with pytest.raises(PermissionDenied):
        lifecycle.schedule_activity(activity=approved(activity), by=operator("pause_activity"))
    activity.refresh_from_db()
    assert activity.state == ActivityState.DRAFT
    lifecycle.schedule_activity(activity=approved(activity), by=operator("schedule_activity"))
    assert activity.state == ActivityState.SCHEDULED


def test_ending_needs_the_pause_permission():
    activity = draft(starts_at=NOW - dt.timedelta(hours=1))
    lifecycle.schedule_activity(activity=approved(activity))
    with pytest.raises(PermissionDenied):
        lifecycle.end_activity(activity_id=activity.pk, by=operator("schedule_activity"))
    assert lifecycle.end_activity(activity_id=activity.pk, by=operator("pause_activity"))


# --- guards -------------------------------------------------------------------------------------


def coupon_activity(*, budget=None, stock=None, value="5.00", on_exhausted="pause", extra=()):
    template = TemplateFactory()
    chain = ChainFactory(template=template, channel=ChannelFactory(code="order.paid"))
    StepFactory(chain=chain, position=0, processor="grant_benefit", config={"benefit": "coupon"})
    StepFactory(chain=chain, position=1, processor="build_result")
    activity = ActivityFactory(
        template=template,
        running=True,
        budget_total=budget,
        budget_remaining=budget,
        on_exhausted=on_exhausted,
        starts_at=NOW - dt.timedelta(hours=1),
    )
    BenefitFactory(
        activity=activity, code="coupon", kind="coupon", value=Decimal(value), stock_total=stock
    )
    for code, extra_stock in extra:
        BenefitFactory(activity=activity, code=code, kind="prize", stock_total=extra_stock)
    return activity


def fire(activity, customer, django_capture_on_commit_callbacks):
    client = make_api_key(name=f"shop-{customer}")[0]
    event, _ = accept_event(
        client=client,
        idempotency_key=f"{customer}-1",
        channel_code="order.paid",
        customer_external_id=customer,
        payload={},
        activity_code=activity.code,
    )
    with django_capture_on_commit_callbacks(execute=True):
        process_event(event_id=event.pk)
    return ChainRun.objects.get(event=event)


@pytest.mark.usefixtures("eager_tasks")
def test_budget_guard_pauses_at_the_grant_that_exhausts_it(django_capture_on_commit_callbacks):
    activity = coupon_activity(budget=Decimal("10.00"))
    first = fire(activity, "a", django_capture_on_commit_callbacks)
    activity.refresh_from_db()
    assert (first.outcome, activity.state) == (RunOutcome.GRANTED, ActivityState.RUNNING)

    second = fire(activity, "b", django_capture_on_commit_callbacks)
    activity.refresh_from_db()
    assert second.outcome == RunOutcome.GRANTED
    assert (activity.state, activity.state_reason) == (ActivityState.PAUSED, "budget exhausted")
    assert activity.budget_remaining == Decimal("0.00")

    third = fire(activity, "c", django_capture_on_commit_callbacks)
    assert (third.outcome, third.reason) == (RunOutcome.SKIPPED, "activity_not_running")
    assert Grant.objects.filter(activity=activity).count() == 2
    assert sum(g.value for g in Grant.objects.filter(activity=activity)) == Decimal("10.00")
    log = StateLog.objects.for_(activity).get(transition="pause")
    assert (log.by, log.description) == (None, "budget exhausted")


@pytest.mark.usefixtures("eager_tasks")
def test_budget_that_cannot_pay_for_one_more_coupon_is_exhausted(
    django_capture_on_commit_callbacks,
):
    activity = coupon_activity(budget=Decimal("12.00"))
    fire(activity, "a", django_capture_on_commit_callbacks)
    fire(activity, "b", django_capture_on_commit_callbacks)
    activity.refresh_from_db()
    assert (activity.state, activity.state_reason, activity.budget_remaining) == (
        ActivityState.PAUSED,
        "budget exhausted",
        Decimal("2.00"),
    )
    with pytest.raises(TransitionNotAllowed) as caught:
        lifecycle.resume_activity(activity=activity)
    assert caught.value.message == (
        f"Activity {activity.code} cannot resume: budget exhausted. Raise it first."
    )


@pytest.mark.usefixtures("eager_tasks")
def test_stock_guard_ends_when_every_limited_benefit_is_out(django_capture_on_commit_callbacks):
    activity = coupon_activity(stock=2, on_exhausted="end")
    fire(activity, "a", django_capture_on_commit_callbacks)
    fire(activity, "b", django_capture_on_commit_callbacks)
    activity.refresh_from_db()
    assert (activity.state, activity.state_reason) == (
        ActivityState.ENDED,
        "all prizes out of stock",
    )
    assert Grant.objects.filter(activity=activity).count() == 2


@pytest.mark.usefixtures("eager_tasks")
def test_stock_guard_waits_while_another_limited_benefit_has_stock(
    django_capture_on_commit_callbacks,
):
    activity = coupon_activity(stock=1, extra=[("big-prize", 3)])
    fire(activity, "a", django_capture_on_commit_callbacks)
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    assert lifecycle.exhaustion_reason(activity=activity) == ""


def test_exhaust_is_idempotent_and_rechecks():
    activity = coupon_activity(budget=Decimal("10.00"))
    assert lifecycle.exhaust_activity(activity_id=activity.pk) is False  # not exhausted
    Activity.objects.filter(pk=activity.pk).update(budget_remaining=Decimal("0"))
    assert lifecycle.exhaust_activity(activity_id=activity.pk) is True
    assert lifecycle.exhaust_activity(activity_id=activity.pk) is False  # already paused
    assert [t for t, _ in transitions(activity)] == ["pause"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks")
def test_budget_guard_under_concurrent_grants_never_overdraws(monkeypatch):
    """Twelve customers at once against a budget for two coupons: exactly two grants, the
    activity paused by the run that took the last of the budget, nothing overdrawn."""
    activity = coupon_activity(budget=Decimal("10.00"))
    client = make_api_key(name="shop")[0]
    # Only the threads below run the events (no broker dispatch on accept).
    monkeypatch.setattr("activities.services.events.dispatch_event", lambda **kwargs: True)
    events = [
        accept_event(
            client=client,
            idempotency_key=f"k-{n}",
            channel_code="order.paid",
            customer_external_id=f"c-{n}",
            payload={},
            activity_code=activity.code,
        )[0]
        for n in range(12)
    ]
    barrier = threading.Barrier(len(events))

    def process(event_id):
        try:
            barrier.wait()
            process_event(event_id=event_id)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        list(pool.map(process, [event.pk for event in events]))

    activity.refresh_from_db()
    assert (activity.state, activity.state_reason) == (ActivityState.PAUSED, "budget exhausted")
    assert activity.budget_remaining == Decimal("0.00")
    assert Grant.objects.filter(activity=activity).count() == 2
    outcomes = sorted(
        (run.outcome, run.reason) for run in ChainRun.objects.filter(activity=activity)
    )
    granted = [o for o in outcomes if o[0] == RunOutcome.GRANTED]
    others = {o for o in outcomes if o[0] != RunOutcome.GRANTED}
    assert len(granted) == 2
    assert others <= {
        (RunOutcome.REJECTED, "budget_exhausted"),
        (RunOutcome.SKIPPED, "activity_not_running"),
    }
    assert len(outcomes) == 12
    assert [t for t, _ in transitions(activity)] == ["pause"]


def test_guard_missed_in_a_broker_outage_is_settled_by_the_sweep(
    monkeypatch, django_capture_on_commit_callbacks
):
    from activities import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker unreachable")

    monkeypatch.setattr(tasks.exhaust_activity_task, "apply_async", broker_down)
    activity = coupon_activity(budget=Decimal("10.00"))
    fire(activity, "a", django_capture_on_commit_callbacks)
    with capture_logs() as logs:
        second = fire(activity, "b", django_capture_on_commit_callbacks)
    assert second.outcome == RunOutcome.GRANTED
    assert [(log["event"], log["task"]) for log in logs if log["log_level"] == "warning"] == [
        ("enqueue_failed", "activities.tasks.exhaust_activity_task")
    ]
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING

    assert lifecycle.catch_up() == {"ended": [], "launched": [], "exhausted": [activity.code]}
    activity.refresh_from_db()
    assert (activity.state, activity.state_reason) == (ActivityState.PAUSED, "budget exhausted")

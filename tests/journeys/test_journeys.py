"""Journeys on real PostgreSQL: runs that wait, resume exactly once, exit, and keep their
version; entry rules; pause, resume and end."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from activities.models import ChainRun, Grant, RunOutcome, WaitingRun, WaitState
from activities.services import journeys, lifecycle
from activities.services.configuration.templates import save_step
from activities.services.events import process_event
from notifications.models import Delivery
from tests.factories import BenefitFactory
from tests.journeys.builders import (
    build_journey,
    build_unpaid_reminder,
    fire,
    make_waiting_runs,
)

T0 = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)


def place(customer: str, order: str):
    event = fire("order.placed", customer, {"order": order}, f"placed-{order}")
    process_event(event_id=event.pk)
    return ChainRun.objects.get(event=event)


def send(channel: str, customer: str, payload: dict, key: str):
    event = fire(channel, customer, payload, key)
    process_event(event_id=event.pk)
    return event


@pytest.mark.django_db
def test_the_unpaid_order_gets_a_reminder_and_a_coupon_the_paid_one_nothing(time_machine):
    time_machine.move_to(T0, tick=False)
    build_unpaid_reminder()
    unpaid = place("una", "o-1")
    paid = place("pat", "o-2")
    assert (unpaid.outcome, unpaid.result["resumes_at"], unpaid.result["awaiting"]) == (
        RunOutcome.WAITING,
        (T0 + dt.timedelta(minutes=30)).isoformat(),
        "order.paid",
    )
    # Another order of the same customer paid: not the one the run waits for.
    send("order.paid", "pat", {"order": "o-9"}, "paid-o-9")
    assert WaitingRun.objects.get(pk=paid.pk).state == WaitState.WAITING
    time_machine.move_to(T0 + dt.timedelta(minutes=5), tick=False)
    send("order.paid", "pat", {"order": "o-2"}, "paid-o-2")
    paid.refresh_from_db()
    assert (paid.outcome, WaitingRun.objects.get(pk=paid.pk).reason) == (
        RunOutcome.COMPLETED,
        "event",
    )
    time_machine.move_to(T0 + dt.timedelta(minutes=29, seconds=59), tick=False)
    assert journeys.resume_due_batch() == 0
    time_machine.move_to(T0 + dt.timedelta(minutes=30), tick=False)
    assert journeys.resume_due_batch() == 1
    unpaid.refresh_from_db()
    assert unpaid.outcome == RunOutcome.GRANTED
    assert [s["outcome"] for s in unpaid.steps] == [
        "passed",
        "passed",
        "resumed",
        "passed",
        "passed",
    ]
    assert list(Grant.objects.values_list("customer__external_id", "benefit__code")) == [
        ("una", "pay-now")
    ]
    assert list(Delivery.objects.values_list("customer__external_id", flat=True)) == ["una"]
    assert journeys.resume_due_batch() == 0


@pytest.mark.django_db
def test_an_exit_event_for_the_same_order_cancels_the_wait(time_machine):
    time_machine.move_to(T0, tick=False)
    build_unpaid_reminder()
    run = place("cy", "o-3")
    send("order.cancelled", "cy", {"order": "o-4"}, "cancel-o-4")
    assert WaitingRun.objects.get(pk=run.pk).state == WaitState.WAITING
    send("order.cancelled", "cy", {"order": "o-3"}, "cancel-o-3")
    run.refresh_from_db()
    assert (run.outcome, run.reason) == (RunOutcome.CANCELLED, "exited")
    time_machine.move_to(T0 + dt.timedelta(hours=1), tick=False)
    assert journeys.resume_due_batch() == 0
    assert not Grant.objects.exists()


@pytest.mark.django_db
def test_a_wait_until_local_time_lands_on_the_wall_clock_across_a_dst_change(time_machine):
    # New York springs forward at 02:00 on 2026-03-08: 10:00 that day is 14:00 UTC, not 15:00.
    time_machine.move_to(dt.datetime(2026, 3, 7, 17, 0, tzinfo=dt.UTC), tick=False)
    build_journey(
        code="morning",
        channel="signed.up",
        zone="America/New_York",
        steps=[
            {"processor": "wait_until", "config": {"time": "10:00", "zone": "activity"}},
            {"processor": "set_context", "config": {"values": {"at": {"field": "now"}}}},
        ],
    )
    event = send("signed.up", "dee", {}, "signup-dee")
    waiting = WaitingRun.objects.get(run__event=event)
    assert waiting.due_at == dt.datetime(2026, 3, 8, 14, 0, tzinfo=dt.UTC)
    time_machine.move_to(dt.datetime(2026, 3, 8, 13, 59, 59, tzinfo=dt.UTC), tick=False)
    assert journeys.resume_due_batch() == 0
    time_machine.move_to(dt.datetime(2026, 3, 8, 14, 0, tzinfo=dt.UTC), tick=False)
    assert journeys.resume_due_batch() == 1
    run = ChainRun.objects.get(event=event)
    assert run.outcome == RunOutcome.COMPLETED


@pytest.mark.django_db
def test_the_customers_own_zone_is_used_and_an_unknown_one_falls_back(time_machine):
    from segments.models import Customer

    time_machine.move_to(dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC), tick=False)
    build_journey(
        code="local",
        channel="signed.up",
        zone="Asia/Shanghai",
        steps=[{"processor": "wait_until", "config": {"time": "09:30"}}],
    )
    Customer.objects.create(external_id="ber", timezone="Europe/Berlin")
    Customer.objects.create(external_id="nob", timezone="")
    send("signed.up", "ber", {}, "s-ber")
    send("signed.up", "nob", {}, "s-nob")
    due = dict(WaitingRun.objects.values_list("customer__external_id", "due_at"))
    assert due == {
        "ber": dt.datetime(2026, 6, 2, 7, 30, tzinfo=dt.UTC),
        "nob": dt.datetime(2026, 6, 2, 1, 30, tzinfo=dt.UTC),
    }


@pytest.mark.django_db
def test_a_paused_activity_holds_its_runs_and_resumes_them_late(time_machine):
    time_machine.move_to(T0, tick=False)
    activity = build_unpaid_reminder()
    late = place("lee", "o-5")
    held = place("hal", "o-6")
    lifecycle.pause_activity(activity=activity)
    time_machine.move_to(T0 + dt.timedelta(minutes=10), tick=False)
    # The awaited event comes during the pause: remembered, not acted on.
    send("order.paid", "hal", {"order": "o-6"}, "paid-o-6")
    time_machine.move_to(T0 + dt.timedelta(hours=2), tick=False)
    assert journeys.resume_due_batch() == 0
    assert set(WaitingRun.objects.values_list("state", flat=True)) == {WaitState.WAITING}
    lifecycle.resume_activity(activity=activity)
    assert journeys.resume_due_batch() == 2
    late.refresh_from_db()
    held.refresh_from_db()
    assert (late.outcome, held.outcome) == (RunOutcome.GRANTED, RunOutcome.COMPLETED)
    assert dict(WaitingRun.objects.values_list("run_id", "reason")) == {
        late.pk: "timeout",
        held.pk: "event",
    }


@pytest.mark.django_db
def test_an_ended_activity_cancels_its_waiting_runs_with_the_reason(time_machine):
    time_machine.move_to(T0, tick=False)
    activity = build_unpaid_reminder()
    run = place("eve", "o-7")
    lifecycle.end_activity(activity_id=activity.pk, reason="window closed")
    run.refresh_from_db()
    waiting = WaitingRun.objects.get(pk=run.pk)
    assert (run.outcome, run.reason, waiting.state, waiting.reason) == (
        RunOutcome.CANCELLED,
        "activity_ended",
        WaitState.CANCELLED,
        "activity_ended",
    )
    time_machine.move_to(T0 + dt.timedelta(hours=1), tick=False)
    assert journeys.resume_due_batch() == 0


@pytest.mark.django_db
def test_an_operator_cancels_one_customers_run():
    build_unpaid_reminder()
    run = place("ola", "o-8")
    assert journeys.cancel_run(run_id=run.pk) is True
    assert journeys.cancel_run(run_id=run.pk) is False
    run.refresh_from_db()
    assert (run.outcome, run.reason) == (RunOutcome.CANCELLED, "cancelled_by_operator")


@pytest.mark.django_db
def test_a_run_resumes_on_the_version_it_started_with(time_machine):
    time_machine.move_to(T0, tick=False)
    activity = build_journey(
        code="versioned",
        channel="signed.up",
        steps=[
            {"processor": "wait_for", "config": {"duration": "1h"}},
            {"processor": "grant_benefit", "config": {"benefit": "points", "quantity": 1}},
        ],
    )
    BenefitFactory(activity=activity, code="points", kind="points")
    event = send("signed.up", "vic", {}, "s-vic")
    lifecycle.pause_activity(activity=activity)
    chain = activity.template.chains.get()
    grant_step = chain.steps.get(processor="grant_benefit")
    save_step(
        chain=chain,
        processor="grant_benefit",
        config={"benefit": "points", "quantity": 5},
        step=grant_step,
    )
    lifecycle.resume_activity(activity=activity)
    time_machine.move_to(T0 + dt.timedelta(hours=1), tick=False)
    assert journeys.resume_due_batch() == 1
    assert Grant.objects.get(run__event=event).quantity == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("entry", "second_outcome"),
    [("always", RunOutcome.WAITING), ("once", RunOutcome.REJECTED)],
)
def test_entry_rules(entry, second_outcome):
    build_journey(
        code="entries",
        channel="signed.up",
        steps=[
            {"processor": "journey_rules", "config": {"entry": entry}},
            {"processor": "wait_for", "config": {"duration": "1d"}},
        ],
    )
    send("signed.up", "ena", {}, "e-1")
    second = send("signed.up", "ena", {}, "e-2")
    assert ChainRun.objects.get(event=second).outcome == second_outcome


@pytest.mark.django_db
def test_entry_again_only_after_the_previous_run_ended(time_machine):
    time_machine.move_to(T0, tick=False)
    build_journey(
        code="serial",
        channel="signed.up",
        steps=[
            {"processor": "journey_rules", "config": {"entry": "after_previous_ended"}},
            {"processor": "wait_for", "config": {"duration": "1d"}},
        ],
    )
    send("signed.up", "sam", {}, "a-1")
    refused = send("signed.up", "sam", {}, "a-2")
    assert ChainRun.objects.get(event=refused).reason == "journey_in_progress"
    time_machine.move_to(T0 + dt.timedelta(days=1), tick=False)
    assert journeys.resume_due_batch() == 1
    again = send("signed.up", "sam", {}, "a-3")
    assert ChainRun.objects.get(event=again).outcome == RunOutcome.WAITING


@pytest.mark.django_db
def test_entry_once_per_window(time_machine):
    time_machine.move_to(T0, tick=False)
    build_journey(
        code="windowed",
        channel="signed.up",
        steps=[
            {"processor": "journey_rules", "config": {"entry": "once_per_window", "window": "7d"}},
            {"processor": "build_result"},
        ],
    )
    send("signed.up", "wen", {}, "w-1")
    time_machine.move_to(T0 + dt.timedelta(days=6), tick=False)
    assert ChainRun.objects.get(event=send("signed.up", "wen", {}, "w-2")).reason == (
        "entered_recently"
    )
    time_machine.move_to(T0 + dt.timedelta(days=7, seconds=1), tick=False)
    assert ChainRun.objects.get(event=send("signed.up", "wen", {}, "w-3")).outcome == (
        RunOutcome.COMPLETED
    )


@pytest.mark.django_db(transaction=True)
def test_sweeps_racing_each_other_resume_every_run_exactly_once(time_machine):
    time_machine.move_to(T0, tick=False)
    activity = build_journey(
        code="race",
        channel="signed.up",
        steps=[
            {"processor": "wait_for", "config": {"duration": "1m"}},
            {"processor": "grant_benefit", "config": {"benefit": "points", "quantity": 1}},
        ],
    )
    BenefitFactory(activity=activity, code="points", kind="points")
    # Written directly, not through committed events: a Celery worker left running by another
    # test would process those on the real clock and make the runs due then.
    make_waiting_runs(
        activity=activity, channel="signed.up", count=60, due_at=T0 + dt.timedelta(minutes=1)
    )
    time_machine.move_to(T0 + dt.timedelta(minutes=1), tick=False)
    start = threading.Barrier(3)
    counts: list[int] = []

    def sweep() -> None:
        try:
            start.wait()
            total = 0
            while resumed := journeys.resume_due_batch(limit=7, now=timezone.now()):
                total += resumed
            counts.append(total)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 60
    assert Grant.objects.count() == 60
    assert set(ChainRun.objects.values_list("outcome", flat=True)) == {RunOutcome.GRANTED}

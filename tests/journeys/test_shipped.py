"""The shipped journey definitions import, run, and wait where they say."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from activities.definitions import import_definition
from activities.definitions.loading import parse_text
from activities.models import ChainRun, Grant, RunOutcome, WaitingRun, WaitState
from activities.services import journeys
from activities.services.events import process_event
from notifications.models import Delivery
from segments.models import Customer
from tests.journeys.builders import fire
from tests.notifications.factories import NotificationTemplateFactory

SHIPPED = Path(__file__).resolve().parents[2] / "activities" / "definitions" / "journeys"
T0 = dt.datetime(2027, 3, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


def install(name: str) -> None:
    for code in ("unpaid-order-reminder", "welcome", "welcome-coupon", "win-back"):
        NotificationTemplateFactory(code=code)
    document = parse_text((SHIPPED / f"{name}.yaml").read_bytes())
    import_definition(document=document, launch_bypassing_review_by="tests")


def send(channel: str, customer: str, payload: dict, key: str):
    event = fire(channel, customer, payload, key)
    process_event(event_id=event.pk)
    return event


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["unpaid-order-reminder", "welcome-series", "win-back"])
def test_each_shipped_journey_imports_and_runs(name, time_machine):
    time_machine.move_to(T0, tick=False)
    install(name)
    from activities.models import Activity

    assert Activity.objects.get(code=name).state == "running"


@pytest.mark.django_db
def test_the_welcome_series_waits_three_days_then_until_ten_in_the_customers_zone(time_machine):
    time_machine.move_to(T0, tick=False)
    install("welcome-series")
    Customer.objects.create(
        external_id="wen",
        name="Wen",
        email="wen@example.test",
        email_consent=True,
        timezone="Europe/Paris",
    )
    event = send("customer.registered", "wen", {}, "reg-wen")
    again = send("customer.registered", "wen", {}, "reg-wen-2")
    assert ChainRun.objects.get(event=again).reason == "already_entered"
    assert Delivery.objects.count() == 1
    time_machine.move_to(T0 + dt.timedelta(days=3), tick=False)
    assert journeys.resume_due_batch() == 1
    waiting = WaitingRun.objects.get(run__event=event)
    # 2027-03-04 02:00 UTC is 03:00 in Paris: the coupon waits for 10:00 there (09:00 UTC).
    assert (waiting.state, waiting.due_at) == (
        WaitState.WAITING,
        dt.datetime(2027, 3, 4, 9, 0, tzinfo=dt.UTC),
    )
    time_machine.move_to(dt.datetime(2027, 3, 4, 9, 0, tzinfo=dt.UTC), tick=False)
    assert journeys.resume_due_batch() == 1
    run = ChainRun.objects.get(event=event)
    assert run.outcome == RunOutcome.GRANTED
    assert Grant.objects.get().benefit.code == "welcome-coupon"
    assert Delivery.objects.count() == 2


@pytest.mark.django_db
def test_win_back_only_for_the_customer_who_stayed_away(time_machine):
    time_machine.move_to(T0, tick=False)
    install("win-back")
    send("order.paid", "stay", {"order": "a"}, "paid-a")
    send("order.paid", "back", {"order": "b"}, "paid-b")
    time_machine.move_to(T0 + dt.timedelta(days=30), tick=False)
    send("order.paid", "back", {"order": "c"}, "paid-c")
    time_machine.move_to(T0 + dt.timedelta(days=61), tick=False)
    assert journeys.resume_due_batch() == 1  # stay timed out; back waits again since day 30
    assert not Grant.objects.exists()  # stay's coupon waits for the next 10:00 in Shanghai
    time_machine.move_to(T0 + dt.timedelta(days=62), tick=False)
    assert journeys.resume_due_batch() == 1
    assert list(Grant.objects.values_list("customer__external_id", flat=True)) == ["stay"]

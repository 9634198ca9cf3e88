"""Conversions: the window's edges as UTC instants, once per customer and goal, the payload
condition, attribution to the exposed variant, and idempotency under re-delivery."""

import datetime as dt

import pytest

from activities.experiments.services import activity_experiment, save_goal
from activities.models import Assignment, Conversion, Event, EventState
from activities.services.conversions import record_conversions
from activities.services.events import process_event
from core.errors import InvalidConfiguration
from segments.models import Customer
from tests.experiments.builders import fire, split_activity, split_config
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

T = dt.datetime(2026, 11, 20, 16, 0, 0, tzinfo=dt.UTC)  # 00:00 the next day in Shanghai
WINDOW = dt.timedelta(days=1)
TICK = dt.timedelta(microseconds=1)


@pytest.fixture
def experiment():
    ChannelFactory(code="order.paid")
    activity = split_activity(config=split_config(weights=(1, 1)))
    experiment = activity_experiment(activity=activity, key="reward")
    save_goal(experiment=experiment, code="paid", channel="order.paid", window=WINDOW)
    return experiment


def exposed(external_id: str, *, at: dt.datetime = T, timezone: str = "") -> str:
    """Expose the customer through a real run, then pin the exposure instant to `at`."""
    fire("quiz.completed", external_id)
    Customer.objects.filter(external_id=external_id).update(timezone=timezone)
    stored = Assignment.objects.get(customer__external_id=external_id)
    Assignment.objects.filter(pk=stored.pk).update(assigned_at=at)
    return stored.variant


def conversions(goal_code: str = "paid") -> dict[str, str]:
    return dict(
        Conversion.objects.filter(goal__code=goal_code).values_list(
            "customer__external_id", "variant"
        )
    )


def test_the_window_edges_are_exact_utc_instants(experiment):
    cases = {
        "at-exposure": T,
        "just-after": T + TICK,
        "window-end": T + WINDOW,
        "past-window": T + WINDOW + TICK,
        "before": T - dt.timedelta(hours=1),
    }
    variants = {}
    for index, (name, at) in enumerate(cases.items()):
        # The customer's own timezone plays no part: instants are compared in UTC.
        variants[name] = exposed(
            name, timezone=["Asia/Shanghai", "America/New_York", ""][index % 3]
        )
        fire("order.paid", name, {"amount": 10}, at=at)
    assert conversions() == {
        "just-after": variants["just-after"],
        "window-end": variants["window-end"],
    }
    row = Conversion.objects.get(customer__external_id="window-end")
    assert (row.exposed_at, row.converted_at) == (T, T + WINDOW)


def test_a_second_conversion_and_a_redelivered_event_count_once(experiment):
    variant = exposed("alice")
    first = fire("order.paid", "alice", {"amount": 10}, at=T + dt.timedelta(hours=1))
    fire("order.paid", "alice", {"amount": 99}, at=T + dt.timedelta(hours=2))
    assert conversions() == {"alice": variant}
    assert Conversion.objects.get().event_id == first.pk
    # The same event again: directly, and as a re-delivery after a crash before "done".
    assert record_conversions(event=Event.objects.get(pk=first.pk)) == 0
    Event.objects.filter(pk=first.pk).update(state=EventState.RUNNING)
    process_event(event_id=first.pk)
    assert Conversion.objects.count() == 1


def test_the_payload_condition_and_several_goals(experiment):
    save_goal(
        experiment=experiment,
        code="big-order",
        channel="order.paid",
        window=dt.timedelta(hours=1),
        condition={"all": [{"field": "event.amount", "op": "gte", "value": 100}]},
        position=1,
    )
    variant = exposed("bob")
    fire("order.paid", "bob", {"amount": 50}, at=T + dt.timedelta(minutes=10))
    assert (conversions("paid"), conversions("big-order")) == ({"bob": variant}, {})
    fire("order.paid", "bob", {"amount": 150}, at=T + dt.timedelta(minutes=20))
    assert conversions("big-order") == {"bob": variant}
    fire("order.paid", "bob", {"amount": 500}, at=T + dt.timedelta(minutes=30))
    assert Conversion.objects.count() == 2


def test_conversions_go_to_the_variant_each_customer_was_exposed_to(experiment):
    exposed_to = {f"c{i}": exposed(f"c{i}") for i in range(30)}
    assert set(exposed_to.values()) == {"control", "double"}
    for external_id in exposed_to:
        fire("order.paid", external_id, at=T + dt.timedelta(minutes=5))
    assert conversions() == exposed_to
    # Somebody never exposed converts nowhere.
    fire("order.paid", "stranger", at=T + dt.timedelta(minutes=5))
    assert "stranger" not in conversions()


def test_goal_checks(experiment):
    with pytest.raises(InvalidConfiguration) as refused:
        save_goal(
            experiment=experiment,
            code="paid",
            channel="no.such",
            window=dt.timedelta(0),
            condition={"all": [{"field": "customer.name", "value": "x"}]},
        )
    assert sorted(e["path"] for e in refused.value.details) == [
        "channel",
        "code",
        "condition.all[0].field",
        "window",
    ]
    goal = experiment.goals.get()
    exposed("carol")
    fire("order.paid", "carol", at=T + TICK)
    with pytest.raises(InvalidConfiguration) as in_use:
        save_goal(
            experiment=experiment,
            code="paid",
            channel="order.paid",
            window=dt.timedelta(days=2),
            goal=goal,
        )
    assert [e["code"] for e in in_use.value.details] == ["goal_in_use"]

"""The gameplay library: each gameplay built from parameters, refused when it cannot work,
driven over REST to its reward, read back through the progress endpoint; streaks counted by
local days across DST and local midnight; shipped definitions round-trip."""

import copy
import datetime as dt
import json
import threading
import zoneinfo
from pathlib import Path

import pytest
from django.db import connection, transaction

from activities.definitions import export_definition, import_definition, parse_text
from activities.definitions.gameplays import (
    all_gameplays,
    build_document,
    create_from_gameplay,
    get,
    shipped_documents,
)
from activities.models import Activity, ActivityState, Grant, StrategyTemplate
from activities.services import streaks
from activities.services.events import process_event
from core.errors import InvalidConfiguration
from segments.models import Customer

pytestmark = pytest.mark.django_db

WINDOW = {"starts_at": "2026-01-01T00:00:00", "ends_at": "2027-12-31T23:59:59"}


def launch(code, params=None, *, benefits=None, zone="Asia/Shanghai", activity_code=None):
    gameplay = get(code)
    return create_from_gameplay(
        gameplay_code=code,
        parameters=gameplay.defaults() if params is None else params,
        activity={
            "code": activity_code or f"{code}-test",
            "name": "Test",
            "timezone": zone,
            **WINDOW,
            "segment": None,
            "benefits": gameplay.initial_benefits() if benefits is None else benefits,
        },
        launch_bypassing_review_by="test",
    )


def fire(api, channel, customer="alice", payload=None, key=None):
    body = {"channel": channel, "customer": customer, "payload": payload or {}}
    response = api.post(
        "/api/v1/events/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key or f"{channel}-{customer}-{json.dumps(payload)}-{fire.n}",
    )
    fire.n += 1
    assert response.status_code == 202, response.content
    process_event(event_id=response.json()["id"])
    [run] = api.get(response.json()["url"]).json()["runs"]
    return run


fire.n = 0


def at(time_machine, zone, *args):
    time_machine.move_to(dt.datetime(*args, tzinfo=zoneinfo.ZoneInfo(zone)), tick=False)


def progress(api, code, customer="alice"):
    response = api.get(f"/api/v1/customers/{customer}/activities/{code}/")
    assert response.status_code == 200, response.content
    return response.json()


# --- the registry and the shipped definitions --------------------------------------------------


def test_registry_lists_the_shipped_gameplays():
    assert {"checkin-streak", "quiz-lottery", "tasks"} <= {g.code for g in all_gameplays()}
    for gameplay in all_gameplays():
        assert str(gameplay.name) and str(gameplay.description) and str(gameplay.preview)
        for spec in gameplay.parameters["properties"].values():
            assert str(spec["title"])


@pytest.mark.parametrize("path", shipped_documents(), ids=lambda p: p.stem)
def test_shipped_definition_is_built_from_the_defaults_and_round_trips(path):
    document = parse_text(path.read_bytes())
    gameplay = get(document["gameplay"]["code"])
    assert document["gameplay"]["parameters"] == gameplay.defaults()
    assert document["chains"] == gameplay.build(gameplay.defaults())
    activity = import_definition(document=copy.deepcopy(document))
    assert activity.template.gameplay == gameplay.code
    assert export_definition(activity=activity) == document


def test_quiz_lottery_defaults_build_the_first_demo_chains():
    demo = parse_text(Path("activities/definitions/demo/spring-quiz-lottery.yaml").read_bytes())
    gameplay = get("quiz-lottery")
    assert gameplay.build(gameplay.defaults()) == demo["chains"]


# --- refusals -----------------------------------------------------------------------------------


def refusal(code, params, benefits=None):
    with pytest.raises(InvalidConfiguration) as caught:
        launch(code, params, benefits=benefits)
    assert Activity.objects.count() == 0 and StrategyTemplate.objects.count() == 0
    return [(d["path"], d["code"]) for d in caught.value.details]


def test_a_milestone_past_the_streak_length_is_refused():
    params = {**get("checkin-streak").defaults(), "cycle_days": 5}
    assert refusal("checkin-streak", params) == [
        ("parameters.milestones[1].day", "milestone_past_length")
    ]


def test_checkin_streak_refusals_by_field():
    params = get("checkin-streak").defaults()
    params["milestones"] = [
        {"day": 3, "benefit": "points", "quantity": 1},
        {"day": 3, "benefit": "gold", "quantity": 1},
    ]
    params["make_up"] = True
    assert refusal("checkin-streak", params) == [
        ("parameters.milestones[1].benefit", "unknown_benefit"),
        ("parameters.milestones[1].day", "duplicate_milestone"),
        ("parameters.make_up_cost", "make_up_cost_missing"),
    ]
    params = {**get("checkin-streak").defaults(), "cycle_days": 1}
    assert refusal("checkin-streak", params) == [("parameters.cycle_days", "invalid_minimum")]


def test_field_errors_are_in_the_operators_language(settings):
    from django.utils import translation

    params = {**get("checkin-streak").defaults(), "cycle_days": 5}
    with translation.override("en"), pytest.raises(InvalidConfiguration) as caught:
        launch("checkin-streak", params)
    assert caught.value.details[0]["message"] == "Day 7 is past the streak length (5 days)."


def test_tasks_refusals():
    params = get("tasks").defaults()
    params["tasks"] = [
        {**params["tasks"][0], "field": "customer.city", "op": "eq", "value": "x"},
        {**params["tasks"][0], "field": None, "op": "gte"},
    ]
    assert refusal("tasks", params) == [
        ("parameters.tasks[0].field", "unknown_field"),
        ("parameters.tasks[1].key", "duplicate_task"),
        ("parameters.tasks[1].field", "required"),
    ]


def test_quiz_lottery_refuses_the_chance_as_a_prize():
    params = get("quiz-lottery").defaults()
    params["prizes"] = [{"benefit": "chance", "weight": 1}]
    assert refusal("quiz-lottery", params) == [("parameters.prizes[0].benefit", "chance_as_prize")]


# --- checkin-streak over REST -------------------------------------------------------------------


def test_checkin_streak_to_its_milestones_and_the_progress_read(api, time_machine):
    activity = launch("checkin-streak")
    assert activity.state == ActivityState.RUNNING
    outcomes = []
    for day in range(1, 8):
        at(time_machine, "Asia/Shanghai", 2026, 12, day, 9, 0)
        run = fire(api, "checkin.done")
        outcomes.append((run["outcome"], run["result"]["streak"], run["result"]["cycle_day"]))
        if day == 2:
            again = fire(api, "checkin.done")
            assert (again["outcome"], again["reason"]) == ("rejected", "already_checked_in")
    assert outcomes == [
        ("completed", 1, 1),
        ("completed", 2, 2),
        ("granted", 3, 3),
        ("completed", 4, 4),
        ("completed", 5, 5),
        ("completed", 6, 6),
        ("granted", 7, 7),
    ]
    assert sorted(Grant.objects.values_list("benefit__code", "quantity")) == [
        ("coupon-7", 1),
        ("points", 10),
    ]
    read = progress(api, "checkin-streak-test")
    assert read["gameplay"] == "checkin-streak"
    assert read["balances"] == {"points": 10, "coupon-7": 1}
    assert read["streak"] == {
        "length": 7,
        "cycle_days": 7,
        "days_this_cycle": 7,
        "checked_in_today": True,
        "today": "2026-12-07",
        "best": 7,
        "days_total": 7,
        "next_milestones": [3, 7],
    }
    # Day 8 starts a new cycle; a missed day 9 breaks the streak.
    at(time_machine, "Asia/Shanghai", 2026, 12, 8, 9, 0)
    assert fire(api, "checkin.done")["result"]["cycle_day"] == 1
    at(time_machine, "Asia/Shanghai", 2026, 12, 10, 9, 0)
    assert progress(api, "checkin-streak-test")["streak"]["length"] == 0
    assert fire(api, "checkin.done")["result"]["streak"] == 1


def test_milestones_once_per_activity_when_not_repeating(api, time_machine):
    params = {
        **get("checkin-streak").defaults(),
        "repeat": False,
        "cycle_days": 3,
        "milestones": [{"day": 2, "benefit": "points", "quantity": 5}],
    }
    launch("checkin-streak", params)
    granted = []
    for day in (1, 2, 3, 5, 6):  # the streak breaks on day 4, reaches 2 again on day 6
        at(time_machine, "Asia/Shanghai", 2026, 12, day, 9, 0)
        granted.append(fire(api, "checkin.done")["outcome"])
    assert granted == ["completed", "granted", "completed", "completed", "completed"]


def test_make_up_fills_yesterday_by_spending_a_card(api, time_machine):
    params = {**get("checkin-streak").defaults(), "make_up": True, "make_up_cost": "card"}
    benefits = [*get("checkin-streak").initial_benefits(), {"code": "card", "kind": "chance"}]
    activity = launch("checkin-streak", params, benefits=benefits)
    for day in (1, 2):
        at(time_machine, "Asia/Shanghai", 2026, 12, day, 9, 0)
        fire(api, "checkin.done")
    at(time_machine, "Asia/Shanghai", 2026, 12, 4, 8, 0)  # missed the 3rd
    no_card = fire(api, "checkin.makeup")
    assert (no_card["outcome"], no_card["reason"]) == ("rejected", "not_enough_card")
    customer = Customer.objects.get(external_id="alice")
    Grant.objects.create(
        benefit=activity.benefits.get(code="card"),
        activity=activity,
        customer=customer,
        idempotency_key="card-alice",
        quantity=1,
        remaining=1,
    )
    made_up = fire(api, "checkin.makeup")
    # Filling the 3rd makes it the third day of the streak: the day-3 milestone pays.
    assert (made_up["outcome"], made_up["result"]["streak"]) == ("granted", 3)
    assert made_up["result"]["balances"]["card"] == 0
    assert fire(api, "checkin.makeup")["reason"] == "nothing_to_make_up"
    assert fire(api, "checkin.done")["result"]["streak"] == 4


def test_streak_across_dst_changes_counts_local_days(api, time_machine):
    launch("checkin-streak", zone="America/New_York")
    # 2026-03-08 has 23 hours in New York, 2026-11-01 has 25.
    for when in [(2026, 3, 7, 23, 30), (2026, 3, 8, 23, 30), (2026, 3, 9, 0, 10)]:
        at(time_machine, "America/New_York", *when)
        last = fire(api, "checkin.done")
    assert last["result"]["streak"] == 3
    at(time_machine, "America/New_York", 2026, 10, 31, 23, 50)
    assert fire(api, "checkin.done")["result"]["streak"] == 1
    at(time_machine, "America/New_York", 2026, 11, 1, 0, 30)
    assert fire(api, "checkin.done")["result"]["streak"] == 2
    # 24 hours after 00:30 on the 25-hour day is still 1 November, 23:30 local.
    time_machine.shift(dt.timedelta(hours=24))
    again = fire(api, "checkin.done")
    assert (again["outcome"], again["reason"]) == ("rejected", "already_checked_in")
    at(time_machine, "America/New_York", 2026, 11, 2, 0, 5)
    assert fire(api, "checkin.done")["result"]["streak"] == 3


def test_streak_counts_the_customers_local_midnight(api, time_machine):
    launch("checkin-streak", zone="UTC")
    Customer.objects.create(external_id="alice", timezone="Asia/Shanghai")
    # 15:59 and 16:01 UTC on one UTC day are 23:59 and 00:01 on two days in Shanghai.
    at(time_machine, "UTC", 2026, 12, 1, 15, 59)
    assert fire(api, "checkin.done")["result"]["streak"] == 1
    at(time_machine, "UTC", 2026, 12, 1, 16, 1)
    assert fire(api, "checkin.done")["result"]["streak"] == 2
    # A customer without a zone counts the activity's days: the same two instants are one day.
    at(time_machine, "UTC", 2026, 12, 1, 15, 59)
    fire(api, "checkin.done", customer="bob")
    at(time_machine, "UTC", 2026, 12, 1, 16, 1)
    assert fire(api, "checkin.done", customer="bob")["reason"] == "already_checked_in"


# --- tasks over REST ----------------------------------------------------------------------------


def test_tasks_to_each_reward_and_the_reward_for_all(api):
    launch("tasks")
    views = [fire(api, "product.viewed", payload={"sku": n}) for n in range(4)]
    assert [r["outcome"] for r in views] == ["completed", "completed", "granted", "completed"]
    assert fire(api, "product.shared")["outcome"] == "granted"
    read = progress(api, "tasks-test")
    assert (read["tasks"]["done"], read["tasks"]["left"]) == (2, 1)
    small = fire(api, "order.paid", payload={"amount": 20})
    assert small["outcome"] == "completed"
    paid = fire(api, "order.paid", payload={"amount": 80})
    assert sorted((g["benefit"], g["quantity"]) for g in paid["result"]["granted"]) == [
        ("coupon-all", 1),
        ("points", 20),
    ]
    read = progress(api, "tasks-test")
    assert read["balances"] == {"points": 30, "coupon-all": 1}
    assert read["tasks"] == {
        "items": [
            {"key": "view", "channel": "product.viewed", "target": 3, "count": 3, "done": True},
            {"key": "share", "channel": "product.shared", "target": 1, "count": 1, "done": True},
            {"key": "pay", "channel": "order.paid", "target": 1, "count": 1, "done": True},
        ],
        "done": 3,
        "left": 0,
    }
    assert fire(api, "order.paid", payload={"amount": 90})["result"]["granted"] == []


# --- quiz-lottery over REST and the read for a customer never seen ------------------------------


def test_quiz_lottery_from_parameters(api):
    params = {**get("quiz-lottery").defaults(), "pass_score": 80}
    launch("quiz-lottery", params)
    assert fire(api, "quiz.completed", payload={"score": 70})["outcome"] == "rejected"
    assert fire(api, "quiz.completed", payload={"score": 85})["outcome"] == "granted"
    draw = fire(api, "lottery.draw")
    assert draw["outcome"] == "granted"
    assert draw["result"]["balances"]["chance"] == 0
    unknown = progress(api, "quiz-lottery-test", customer="nobody")
    assert unknown == {
        "activity": "quiz-lottery-test",
        "customer": "nobody",
        "gameplay": "quiz-lottery",
        "balances": {"chance": 0, "big-prize": 0, "coupon-5": 0},
    }
    missing = api.get("/api/v1/customers/alice/activities/nope/")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_build_document_names_the_template_after_the_activity():
    gameplay = get("tasks")
    document = build_document(
        gameplay=gameplay, parameters=gameplay.defaults(), activity={"code": "x"}
    )
    assert (document["template"], document["gameplay"]["code"]) == ("x", "tasks")


def test_the_progress_read_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/customers/{external_id}/activities/{code}/"]["get"]
    assert operation["operationId"] == "get_customer_progress"


@pytest.mark.django_db(transaction=True)
def test_check_ins_racing_on_one_day_count_once():
    """Eight check-ins of one customer at once on one day (no chain lock in play): one counts."""
    activity = launch("checkin-streak")
    customer = Customer.objects.create(external_id="racer")
    day = dt.date(2026, 12, 5)
    start = threading.Barrier(8)
    results = []

    def check_in() -> None:
        try:
            start.wait()
            with transaction.atomic():
                results.append(
                    streaks.check_in(
                        activity_id=activity.pk, customer_id=customer.pk, key="checkin", day=day
                    )
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=check_in) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=lambda state: state is not None) == [None] * 7 + [
        streaks.StreakState(length=1, best=1, days=1, record=True)
    ]
    streak = activity.streaks.get()
    assert (streak.last_day, streak.length, streak.days) == (day, 1, 1)

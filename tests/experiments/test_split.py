"""The split processor in real runs on PostgreSQL: stable assignment, nested steps in the same
run and trace, exposures kept when the variant rejects, validation paths at save and import."""

from collections import Counter

import pytest

from activities.definitions import check_definition
from activities.engine import assignment
from activities.models import Assignment, ChainRun, Experiment, Grant, RunOutcome
from activities.services.configuration import check_step
from activities.services.exposures import activity_salt
from activities.services.readiness import check_activity
from segments.models import Customer
from tests.experiments.builders import fire, run_of, set_split, split_activity, split_config

pytestmark = pytest.mark.django_db


def variant_of(activity, external_id: str) -> str:
    return Assignment.objects.get(
        experiment__activity=activity, customer__external_id=external_id
    ).variant


def expected(activity, external_id: str, weights) -> str:
    customer = Customer.objects.get(external_id=external_id)
    salt = activity_salt(activity_code=activity.code, key="reward")
    return ["control", "double"][assignment.choose(salt, customer.pk, weights)]


def test_the_same_customer_gets_the_same_variant_across_1000_events_and_a_weight_change():
    activity = split_activity()
    first = run_of(fire("quiz.completed", "alice"))
    variant = (
        first.result["variant"] if "variant" in first.result else variant_of(activity, "alice")
    )
    assert variant == expected(activity, "alice", [1, 1])
    for _ in range(999):
        fire("quiz.completed", "alice")
    runs = ChainRun.objects.filter(customer__external_id="alice")
    assert runs.count() == 1000
    assert Counter(run.steps[0]["assigned"] for run in runs) == {variant: 1000}
    # New weights send every new customer to the other variant; alice stays where she was.
    other = "control" if variant == "double" else "double"
    set_split(activity, split_config(weights=(0, 1) if other == "double" else (1, 0)))
    for _ in range(50):
        assert run_of(fire("quiz.completed", "alice")).steps[0]["assigned"] == variant
    for index in range(20):
        assert run_of(fire("quiz.completed", f"new-{index}")).steps[0]["assigned"] == other
    assert Assignment.objects.filter(customer__external_id="alice").count() == 1
    # Only the "double" variant grants (the coupon is not stackable: one grant, handed back).
    outcomes = set(
        ChainRun.objects.filter(customer__external_id="alice").values_list("outcome", flat=True)
    )
    assert outcomes == {RunOutcome.GRANTED if variant == "double" else RunOutcome.COMPLETED}
    assert Grant.objects.filter(customer__external_id="alice").exists() == (variant == "double")


def test_the_variant_steps_run_in_the_same_run_and_trace():
    activity = split_activity()
    customers = [f"c{i}" for i in range(40)]
    for external_id in customers:
        fire("quiz.completed", external_id)
    by_variant = {
        name: [c for c in customers if variant_of(activity, c) == name]
        for name in ("control", "double")
    }
    assert by_variant["control"] and by_variant["double"]
    for external_id in customers:
        assert variant_of(activity, external_id) == expected(activity, external_id, [1, 1])

    double = ChainRun.objects.get(customer__external_id=by_variant["double"][0])
    assert double.outcome == RunOutcome.GRANTED
    assert [
        (s["processor"], s["outcome"], s.get("variant"), s.get("assigned")) for s in double.steps
    ] == [
        ("split", "passed", None, "double"),
        ("grant_benefit", "passed", "double", None),
        ("build_result", "passed", None, None),
    ]
    grant = Grant.objects.get(run=double)
    # The nested step's index (and so its idempotency key) is clear of the chain's own.
    assert grant.idempotency_key == f"run:{double.pk}:step:{10_000 + 100 * 1 + 0}"
    assert double.result["balances"] == {"coupon": 2}

    control = ChainRun.objects.get(customer__external_id=by_variant["control"][0])
    assert control.outcome == RunOutcome.COMPLETED
    assert [(s["processor"], s.get("assigned")) for s in control.steps] == [
        ("split", "control"),
        ("build_result", None),
    ]
    assert Experiment.objects.get(activity=activity).key == "reward"


def test_a_variant_that_rejects_rolls_back_its_writes_but_keeps_the_exposure():
    config = split_config(
        weights=(0, 1),
        double_steps=[
            {"processor": "grant_benefit", "config": {"benefit": "coupon"}},
            {
                "processor": "rule_check",
                "config": {"all": [{"field": "event.score", "op": "gte", "value": 60}]},
            },
        ],
    )
    activity = split_activity(config=config, requires_lock=False)
    run = run_of(fire("quiz.completed", "bob", {"score": 10}))
    assert (run.outcome, run.reason) == (RunOutcome.REJECTED, "rule_not_met")
    assert [(s["processor"], s["outcome"], s.get("variant")) for s in run.steps] == [
        ("split", "passed", None),
        ("grant_benefit", "passed", "double"),
        ("rule_check", "rejected", "double"),
    ]
    assert not Grant.objects.exists()
    stored = Assignment.objects.get(customer__external_id="bob")
    assert (stored.variant, stored.experiment.activity_id) == ("double", activity.pk)
    # The next run finds the stored variant, even with weights that would now say otherwise.
    set_split(
        activity,
        {
            **config,
            "variants": [
                {**config["variants"][0], "weight": 1},
                {**config["variants"][1], "weight": 0},
            ],
        },
    )
    again = run_of(fire("quiz.completed", "bob", {"score": 90}))
    assert again.outcome == RunOutcome.GRANTED
    assert again.steps[0]["assigned"] == "double"
    assert Assignment.objects.filter(customer__external_id="bob").count() == 1


def test_a_step_skipped_by_its_condition_inside_a_variant():
    config = split_config(
        weights=(0, 1),
        double_steps=[
            {
                "processor": "grant_benefit",
                "config": {"benefit": "coupon"},
                "when": {"field": "event.vip", "op": "eq", "value": True},
                "on_error": "continue",
            }
        ],
    )
    split_activity(config=config)
    run = run_of(fire("quiz.completed", "carol", {"vip": False}))
    assert run.steps[1] == {
        **run.steps[1],
        "processor": "grant_benefit",
        "outcome": "skipped",
        "reason": "condition_false",
        "variant": "double",
    }
    assert run.outcome == RunOutcome.COMPLETED


# --- validation ---------------------------------------------------------------------------------


def paths(errors):
    return sorted((e.path, e.code) for e in errors)


def test_nested_steps_are_checked_with_their_paths():
    config = split_config(
        double_steps=[
            {"processor": "grant_benefit", "config": {"benefit": "coupon"}},
            {"processor": "grant_benefit", "config": {"benefit": "Not A Code"}},
            {"processor": "rule_check", "config": {"all": [{"field": "bogus.x", "value": 1}]}},
            {"processor": "nope"},
            {"processor": "split", "config": split_config()},
        ]
    )
    errors = check_step(processor="split", config=config, when=None)
    assert paths(errors) == [
        ("config.variants[1].steps[1].config.benefit", "invalid_config"),
        ("config.variants[1].steps[2].config.all[0].field", "unknown_field"),
        ("config.variants[1].steps[3].processor", "unknown_processor"),
        ("config.variants[1].steps[4].processor", "nested_split"),
    ]


def test_variant_names_weights_and_control_are_checked():
    config = {
        "key": "reward",
        "control": "missing",
        "variants": [{"name": "a", "weight": 0}, {"name": "a", "weight": 0}],
    }
    assert paths(check_step(processor="split", config=config, when=None)) == [
        ("config.control", "unknown_variant"),
        ("config.variants", "invalid_weights"),
        ("config.variants[1].name", "duplicate_variant"),
    ]
    assert paths(check_step(processor="split", config={"key": "x", "variants": []}, when=None)) == [
        ("config.variants", "invalid_config"),
    ]


def test_benefits_named_inside_a_variant_must_exist_on_the_activity():
    config = split_config(
        double_steps=[{"processor": "grant_benefit", "config": {"benefit": "gold"}}]
    )
    activity = split_activity(config=config)
    assert [(e.path, e.code) for e in check_activity(activity=activity)] == [
        ("benefits", "unknown_benefit")
    ]


def test_the_importer_reports_nested_paths_from_the_document_root():
    document = {
        "code": "ab-import",
        "name": "A/B",
        "template": "ab-import",
        "timezone": "Asia/Shanghai",
        "starts_at": "2030-01-01T00:00:00",
        "ends_at": "2030-02-01T00:00:00",
        "benefits": [{"code": "coupon", "kind": "coupon"}],
        "chains": [
            {
                "channel": "quiz.completed",
                "steps": [
                    {
                        "processor": "split",
                        "config": split_config(
                            double_steps=[
                                {
                                    "processor": "grant_benefit",
                                    "config": {"benefit": "coupon", "quantity": 0},
                                },
                                {"processor": "grant_benefit", "config": {"benefit": "gold"}},
                            ]
                        ),
                    }
                ],
            }
        ],
    }
    assert paths(check_definition(document=document)) == [
        ("chains[0].steps[0].config.variants[1].steps[0].config.quantity", "invalid_config"),
    ]
    document["chains"][0]["steps"][0]["config"]["variants"][1]["steps"].pop(0)
    assert paths(check_definition(document=document)) == [
        ("chains[0].steps[0].config", "unknown_benefit"),
    ]
    document["benefits"].append({"code": "gold", "kind": "prize"})
    assert check_definition(document=document) == []


def test_a_dry_run_shows_the_variant_and_keeps_no_exposure():
    from activities.models import Channel
    from activities.services.dry_run import dry_run

    config = split_config(
        weights=(0, 1),
        double_steps=[{"processor": "grant_benefit", "config": {"benefit": "coupon"}}],
    )
    activity = split_activity(config=config)
    outcome = dry_run(
        activity=activity,
        channel=Channel.objects.get(code="quiz.completed"),
        customer_external_id="dry",
        payload={},
    )
    assert [(s["processor"], s.get("assigned"), s.get("variant")) for s in outcome.steps] == [
        ("split", "double", None),
        ("grant_benefit", None, "double"),
        ("build_result", None, None),
    ]
    assert [g["benefit"] for g in outcome.grants] == ["coupon"]
    assert outcome.sends == []
    assert not Assignment.objects.exists()
    assert not Experiment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_runs_store_one_assignment():
    import threading

    from django.db import connection

    from activities.services.events import accept_event, process_event
    from tests.factories import make_api_key

    split_activity(code="ab-race", requires_lock=False)
    client = make_api_key()[0]
    events = [
        accept_event(
            client=client,
            idempotency_key=f"race-{i}",
            channel_code="quiz.completed",
            customer_external_id="racer",
            payload={},
        )[0]
        for i in range(8)
    ]
    barrier = threading.Barrier(len(events))

    def run(event_id):
        try:
            barrier.wait()
            process_event(event_id=event_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(event.pk,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assigned = {r.steps[0]["assigned"] for r in ChainRun.objects.filter(event__in=events)}
    assert len(assigned) == 1
    assert ChainRun.objects.filter(event__in=events).count() == 8
    assert list(Assignment.objects.values_list("variant", flat=True)) == list(assigned)

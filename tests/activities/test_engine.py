"""The runner in-process, against PostgreSQL: outcomes, traces, rollbacks, limits."""

import pytest

from activities.models import Activity, ChainRun, Event, Grant, ParticipationCounter, RunOutcome
from activities.services.events import accept_event, process_event
from tests.factories import (
    ActivityFactory,
    BenefitFactory,
    ChainFactory,
    ChannelFactory,
    StepFactory,
    TemplateFactory,
    build_quiz_lottery,
    make_api_key,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def quiz_lottery():
    return build_quiz_lottery()


def fire(channel, customer, payload, key):
    client = getattr(fire, "client", None) or make_api_key()[0]
    fire.client = client
    event, _ = accept_event(
        client=client,
        idempotency_key=key,
        channel_code=channel,
        customer_external_id=customer,
        payload=payload,
    )
    process_event(event_id=event.pk)
    return ChainRun.objects.get(event=event)


def test_appendix_flow_in_process(quiz_lottery):
    fire.client = None
    passed = fire("quiz.completed", "alice", {"score": 80}, "k1")
    assert passed.outcome == RunOutcome.GRANTED
    assert [s["outcome"] for s in passed.steps] == ["passed"] * 4
    assert passed.result["balances"] == {"big-prize": 0, "chance": 1, "coupon-5": 0}

    low = fire("quiz.completed", "bob", {"score": 40}, "k2")
    assert (low.outcome, low.reason) == (RunOutcome.REJECTED, "rule_not_met")

    again = fire("quiz.completed", "alice", {"score": 90}, "k3")
    assert (again.outcome, again.reason) == (RunOutcome.REJECTED, "day_limit_reached")
    assert Grant.objects.filter(customer__external_id="alice").count() == 1

    draw = fire("lottery.draw", "alice", {}, "k4")
    assert draw.outcome == RunOutcome.GRANTED
    assert draw.result["granted"][0]["benefit"] in {"big-prize", "coupon-5"}
    assert draw.result["balances"]["chance"] == 0

    no_chance = fire("lottery.draw", "alice", {}, "k5")
    assert (no_chance.outcome, no_chance.reason) == (RunOutcome.REJECTED, "rule_not_met")
    assert Event.objects.filter(state="done").count() == 5


def _emit_loop():
    template = TemplateFactory(code="ping-pong")
    ping = ChainFactory(template=template, channel=ChannelFactory(code="ping"))
    pong = ChainFactory(template=template, channel=ChannelFactory(code="pong"))
    # Written past the configuration service on purpose: the runtime guard must hold anyway.
    StepFactory(chain=ping, processor="emit_event", config={"channel": "pong"})
    StepFactory(chain=pong, processor="emit_event", config={"channel": "ping"})
    return ActivityFactory(code="loop", template=template, running=True)


def test_an_emit_loop_is_stopped_at_the_depth_limit(settings):
    settings.GAMBIT_MAX_EMIT_DEPTH = 3
    _emit_loop()
    client = make_api_key()[0]
    event, _ = accept_event(
        client=client,
        idempotency_key="loop",
        channel_code="ping",
        customer_external_id="zoe",
        payload={},
    )
    process_event(event_id=event.pk)
    while pending := Event.objects.filter(state="pending").first():
        process_event(event_id=pending.pk)
    assert sorted(Event.objects.values_list("depth", flat=True)) == [0, 1, 2, 3]
    last = ChainRun.objects.get(event__depth=3)
    assert (last.outcome, last.reason) == (RunOutcome.FAILED, "emit_depth_exceeded")
    assert last.steps[0]["outcome"] == "failed"


def test_emitted_events_are_dispatched_only_after_commit(
    django_capture_on_commit_callbacks, monkeypatch
):
    from activities.services import events

    dispatched = []
    monkeypatch.setattr(events, "dispatch_event", lambda *, event_id: dispatched.append(event_id))
    _emit_loop()
    client = make_api_key()[0]
    event, _ = accept_event(
        client=client,
        idempotency_key="once",
        channel_code="ping",
        customer_external_id="zoe",
        payload={},
    )
    with django_capture_on_commit_callbacks() as callbacks:
        process_event(event_id=event.pk)
    emitted = Event.objects.get(parent_run__event=event)
    assert (emitted.channel.code, emitted.depth, emitted.state) == ("pong", 1, "pending")
    assert dispatched == []
    for callback in callbacks:
        callback()
    assert dispatched == [emitted.pk]


def test_a_step_with_continue_policy_fails_alone(settings):
    template = TemplateFactory(code="tolerant")
    chain = ChainFactory(template=template, channel=ChannelFactory(code="visit"))
    StepFactory(
        chain=chain,
        position=0,
        processor="grant_benefit",
        config={"benefit": "gone"},
        on_error="continue",
    )
    StepFactory(chain=chain, position=1, processor="grant_benefit", config={"benefit": "points"})
    activity = ActivityFactory(code="tolerant", template=template, running=True)
    BenefitFactory(activity=activity, code="points", kind="points")
    client = make_api_key()[0]
    event, _ = accept_event(
        client=client,
        idempotency_key="v",
        channel_code="visit",
        customer_external_id="yan",
        payload={},
    )
    process_event(event_id=event.pk)
    run = ChainRun.objects.get(event=event)
    assert run.outcome == RunOutcome.GRANTED
    assert [(s["outcome"], s.get("reason")) for s in run.steps] == [
        ("failed", "unknown_benefit"),
        ("passed", None),
    ]


def test_a_rejection_rolls_back_what_earlier_steps_wrote():
    template = TemplateFactory(code="strict")
    chain = ChainFactory(template=template, channel=ChannelFactory(code="answer"))
    StepFactory(
        chain=chain,
        position=0,
        processor="participation_limit",
        config={"key": "answers", "per": "customer", "limit": 5},
    )
    StepFactory(chain=chain, position=1, processor="grant_benefit", config={"benefit": "pts"})
    StepFactory(
        chain=chain,
        position=2,
        processor="rule_check",
        config={
            "all": [{"field": "event.correct", "op": "eq", "value": True}],
            "reason": "wrong_answer",
        },
    )
    activity = ActivityFactory(code="strict", template=template, running=True)
    BenefitFactory(activity=activity, code="pts", kind="points", stock_total=3)
    client = make_api_key()[0]
    event, _ = accept_event(
        client=client,
        idempotency_key="a",
        channel_code="answer",
        customer_external_id="xu",
        payload={"correct": False},
    )
    process_event(event_id=event.pk)
    run = ChainRun.objects.get(event=event)
    assert (run.outcome, run.reason) == (RunOutcome.REJECTED, "wrong_answer")
    assert Grant.objects.count() == 0
    assert activity.benefits.get().stock_remaining == 3
    assert not ParticipationCounter.objects.exists()


def test_a_paused_activity_is_not_run_by_the_next_event():
    activity = build_quiz_lottery()
    client = make_api_key()[0]
    first, _ = accept_event(
        client=client,
        idempotency_key="1",
        channel_code="quiz.completed",
        customer_external_id="wu",
        payload={"score": 90},
    )
    process_event(event_id=first.pk)
    Activity.objects.filter(pk=activity.pk).update(state="paused")
    second, _ = accept_event(
        client=client,
        idempotency_key="2",
        channel_code="quiz.completed",
        customer_external_id="vi",
        payload={"score": 90},
    )
    process_event(event_id=second.pk)
    assert ChainRun.objects.filter(event=second).count() == 0
    assert Event.objects.get(pk=second.pk).state == "done"

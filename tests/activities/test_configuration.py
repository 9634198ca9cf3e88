"""Configuration writes: step checks with paths, emit cycles, frozen templates, version stamps."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from activities.models import ActivityState, ChainRun, ChainStep, Channel, Grant, RunOutcome
from activities.services import configuration as conf
from activities.services import readiness
from activities.services.events import accept_event, process_event
from core.errors import InvalidConfiguration, TransitionNotAllowed
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

LOTTERY = {
    "cost": {"benefit": "chance", "quantity": 1},
    "prizes": [{"benefit": "big-prize", "weight": 1}, {"benefit": "coupon-5", "weight": 9}],
    "fallback": None,
}


@pytest.fixture
def quiz_chain():
    template = TemplateFactory(code="quiz-lottery")
    chain = ChainFactory(template=template, channel=ChannelFactory(code="quiz.completed"))
    StepFactory(
        chain=chain,
        position=0,
        processor="rule_check",
        config={"all": [{"field": "event.score", "op": "gte", "value": 60}]},
    )
    StepFactory(chain=chain, position=1, processor="grant_benefit", config={"benefit": "chance"})
    StepFactory(chain=chain, position=2, processor="build_result")
    return chain


def fire(channel, customer, payload, key):
    client, _raw = make_api_key()
    event, _created = accept_event(
        client=client,
        idempotency_key=key,
        channel_code=channel,
        customer_external_id=customer,
        payload=payload,
    )
    process_event(event_id=event.pk)
    return ChainRun.objects.get(event=event)


def details(excinfo):
    return [(d["path"], d["code"]) for d in excinfo.value.details]


# --- check_step ----------------------------------------------------------------------------------


def test_invalid_step_config_names_the_path():
    bad = {**LOTTERY, "prizes": [{"benefit": "big-prize", "weight": -1}]}
    errors = conf.check_step(processor="lottery_draw", config=bad, when=None)
    assert [(e.path, e.code) for e in errors] == [("config.prizes[0].weight", "invalid_config")]
    assert errors[0].message == "Weight must be more than 0."


def test_valid_step_has_no_errors():
    assert conf.check_step(processor="lottery_draw", config=LOTTERY, when=None) == []


def test_unknown_processor():
    errors = conf.check_step(processor="send_fax", config={}, when=None)
    assert [(e.path, e.code) for e in errors] == [("processor", "unknown_processor")]


def test_missing_required_key_and_extra_key():
    errors = conf.check_step(processor="grant_benefit", config={"quantity": 0, "x": 1}, when=None)
    assert [(e.path, e.code) for e in errors] == [
        ("config.benefit", "invalid_config"),
        ("config", "invalid_config"),
        ("config.quantity", "invalid_config"),
    ]


def test_unknown_customer_field_in_rule():
    config = {"all": [{"field": "customer.favourite_colour", "op": "eq", "value": "red"}]}
    errors = conf.check_step(processor="rule_check", config=config, when=None)
    assert [(e.path, e.code) for e in errors] == [("config.all[0].field", "unknown_field")]
    assert errors[0].message.startswith("Unknown customer field 'favourite_colour'; use one of")


def test_when_is_a_rule_with_prefixed_paths():
    when = {"any": [{"field": "event.score", "op": "gt", "value": 1}, {"field": "nope.x"}]}
    errors = conf.check_step(processor="build_result", config={}, when=when)
    assert [(e.path, e.code) for e in errors] == [("when.any[1].field", "unknown_field")]


def test_save_step_refuses_bad_config_and_writes_nothing(quiz_chain):
    version = quiz_chain.template.version
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_step(chain=quiz_chain, processor="grant_benefit", config={"benefit": "Bad Code"})
    assert excinfo.value.code == "invalid_configuration"
    assert details(excinfo) == [("config.benefit", "invalid_config")]
    assert quiz_chain.steps.count() == 3
    quiz_chain.template.refresh_from_db()
    assert quiz_chain.template.version == version


def test_save_step_refuses_bad_on_error(quiz_chain):
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_step(chain=quiz_chain, processor="build_result", on_error="retry")
    assert details(excinfo) == [("on_error", "invalid_choice")]


# --- emit cycles -------------------------------------------------------------------------------


def test_emit_to_own_channel_is_a_cycle(quiz_chain):
    errors = conf.check_step(
        processor="emit_event", config={"channel": "quiz.completed"}, when=None, chain=quiz_chain
    )
    assert [(e.path, e.code) for e in errors] == [("config", "emit_cycle")]
    assert "quiz.completed -> quiz.completed" in errors[0].message


def test_cycle_across_templates_is_refused(quiz_chain):
    other = ChainFactory(channel=ChannelFactory(code="lottery.draw"))
    conf.save_step(chain=other, processor="emit_event", config={"channel": "task.done"})
    third = ChainFactory(channel=ChannelFactory(code="task.done"))
    conf.save_step(chain=third, processor="emit_event", config={"channel": "quiz.completed"})
    steps_before = ChainStep.objects.count()

    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_step(chain=quiz_chain, processor="emit_event", config={"channel": "lottery.draw"})
    assert details(excinfo) == [("config", "emit_cycle")]
    assert excinfo.value.details[0]["message"] == (
        "Emitting to lottery.draw would make events loop: quiz.completed -> lottery.draw -> "
        "task.done -> quiz.completed. Remove one emit step of the loop first."
    )
    assert ChainStep.objects.count() == steps_before


def test_chain_without_loop_may_emit(quiz_chain):
    step = conf.save_step(
        chain=quiz_chain, processor="emit_event", config={"channel": "lottery.draw"}
    )
    assert step.position == 3
    # Editing the step itself does not count its old edge against it.
    conf.save_step(
        chain=quiz_chain, processor="emit_event", config={"channel": "task.done"}, step=step
    )
    step.refresh_from_db()
    assert step.config == {"channel": "task.done"}


def test_a_step_crediting_other_customers_makes_its_channel_fired_by_gambit_only(quiz_chain):
    conf.save_step(chain=quiz_chain, processor="emit_event", config={"channel": "thanks.sent"})
    assert not Channel.objects.filter(code="thanks.sent", internal=True).exists()
    conf.save_step(
        chain=quiz_chain,
        processor="emit_event",
        config={"channel": "friend.credited", "to": {"field": "event.friend"}},
    )
    assert Channel.objects.get(code="friend.credited").internal is True


def test_moving_a_chain_can_close_a_loop(quiz_chain):
    other = ChainFactory(channel=ChannelFactory(code="lottery.draw"))
    conf.save_step(chain=other, processor="emit_event", config={"channel": "quiz.completed"})
    emitter = ChainFactory(channel=ChannelFactory(code="task.done"))
    conf.save_step(chain=emitter, processor="emit_event", config={"channel": "lottery.draw"})
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_chain(template=emitter.template, channel="quiz.completed", chain=emitter)
    assert details(excinfo) == [("channel", "emit_cycle")]
    emitter.refresh_from_db()
    assert emitter.channel.code == "task.done"


# --- frozen templates, versions ----------------------------------------------------------------


def test_template_used_by_a_running_activity_is_frozen(quiz_chain):
    template = quiz_chain.template
    ActivityFactory(code="live", template=template, running=True)
    step = quiz_chain.steps.first()
    for attempt in (
        lambda: conf.save_step(chain=quiz_chain, processor="build_result"),
        lambda: conf.save_step(
            chain=quiz_chain, processor="rule_check", config={"all": [{"field": "now"}]}, step=step
        ),
        lambda: conf.delete_step(step=step),
        lambda: conf.reorder_steps(
            chain=quiz_chain, step_ids=list(reversed([s.pk for s in quiz_chain.steps.all()]))
        ),
        lambda: conf.save_chain(template=template, channel="other.channel"),
        lambda: conf.delete_chain(chain=quiz_chain),
    ):
        with pytest.raises(conf.TemplateFrozen) as excinfo:
            attempt()
        assert excinfo.value.code == "template_frozen"
        assert details(excinfo) == [("template", "template_frozen")]
        assert "Duplicate the template and edit the copy" in excinfo.value.message
        assert "live" in excinfo.value.message
    assert [s.processor for s in quiz_chain.steps.all()] == [
        "rule_check",
        "grant_benefit",
        "build_result",
    ]
    template.refresh_from_db()
    assert template.version == 1


def test_duplicate_template_is_editable(quiz_chain):
    ActivityFactory(template=quiz_chain.template, running=True)
    copy = conf.duplicate_template(template=quiz_chain.template, new_code="quiz-lottery-v2")
    assert copy.version == 1
    [chain] = copy.chains.all()
    assert chain.channel.code == "quiz.completed"
    assert [(s.position, s.processor, s.config) for s in chain.steps.all()] == [
        (s.position, s.processor, s.config) for s in quiz_chain.steps.all()
    ]
    conf.save_step(chain=chain, processor="build_result", config={"message": "hi"})
    copy.refresh_from_db()
    assert copy.version == 2
    assert quiz_chain.steps.count() == 3


def test_duplicate_template_refuses_a_taken_code(quiz_chain):
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.duplicate_template(template=quiz_chain.template, new_code="quiz-lottery")
    assert details(excinfo) == [("code", "unique")]


def test_every_edit_bumps_the_template_version(quiz_chain):
    template = quiz_chain.template
    step = conf.save_step(chain=quiz_chain, processor="build_result", position=0)
    assert quiz_chain.steps.first().pk == step.pk
    conf.reorder_steps(chain=quiz_chain, step_ids=[s.pk for s in quiz_chain.steps.all()][::-1])
    conf.delete_step(step=step)
    chain = conf.save_chain(template=template, channel="brand.new", requires_lock=False)
    conf.save_chain(template=template, channel=chain.channel, requires_lock=True, chain=chain)
    conf.delete_chain(chain=chain)
    template.refresh_from_db()
    assert template.version == 7
    assert [(s.position, s.processor) for s in quiz_chain.steps.all()] == [
        (0, "build_result"),
        (1, "grant_benefit"),
        (2, "rule_check"),
    ]


def test_reorder_must_name_every_step_once(quiz_chain):
    ids = [s.pk for s in quiz_chain.steps.all()]
    for bad in (ids[:2], [*ids, ids[0]], [*ids[:2], 999999]):
        with pytest.raises(InvalidConfiguration) as excinfo:
            conf.reorder_steps(chain=quiz_chain, step_ids=bad)
        assert details(excinfo) == [("step_ids", "invalid_order")]


def test_duplicate_chain_refused(quiz_chain):
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_chain(template=quiz_chain.template, channel="quiz.completed")
    assert details(excinfo) == [("channel", "duplicate_chain")]


def test_new_channel_code_is_checked(quiz_chain):
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_chain(template=quiz_chain.template, channel="Quiz Completed")
    assert details(excinfo) == [("channel", "invalid")]


def test_version_bump_reaches_the_next_event(quiz_chain):
    activity = ActivityFactory(template=quiz_chain.template, running=True)
    BenefitFactory(activity=activity, code="chance", kind="chance")
    first = fire("quiz.completed", "alice", {"score": 50}, "k1")
    assert (first.outcome, first.reason) == (RunOutcome.REJECTED, "rule_not_met")

    activity.pause()
    activity.save()
    gate = quiz_chain.steps.get(processor="rule_check")
    conf.save_step(
        chain=quiz_chain,
        processor="rule_check",
        config={"all": [{"field": "event.score", "op": "gte", "value": 40}]},
        step=gate,
    )
    activity.resume()
    activity.save()

    second = fire("quiz.completed", "alice", {"score": 50}, "k2")
    assert second.outcome == RunOutcome.GRANTED
    assert second.template_version == first.template_version + 1


def test_benefit_edit_reaches_the_next_event_of_a_running_activity(quiz_chain):
    activity = ActivityFactory(template=quiz_chain.template, running=True)
    chance = BenefitFactory(activity=activity, code="chance", kind="chance", value=Decimal("1"))
    fire("quiz.completed", "alice", {"score": 80}, "k1")
    conf.save_benefit(
        activity=activity, benefit=chance, code="chance", kind="chance", value=Decimal("2.50")
    )
    fire("quiz.completed", "alice", {"score": 80}, "k2")
    assert list(Grant.objects.order_by("pk").values_list("value", flat=True)) == [
        Decimal("1.00"),
        Decimal("2.50"),
    ]
    activity.refresh_from_db()
    assert activity.config_version == 2


# --- check_activity ----------------------------------------------------------------------------


def test_check_activity_names_missing_benefits_and_window(quiz_chain):
    draw = ChainFactory(template=quiz_chain.template, channel=ChannelFactory(code="lottery.draw"))
    StepFactory(chain=draw, position=0, processor="lottery_draw", config=LOTTERY)
    activity = ActivityFactory(template=quiz_chain.template, starts_at=None)
    BenefitFactory(activity=activity, code="chance", kind="chance")
    errors = readiness.check_activity(activity=activity)
    assert [(e.path, e.code) for e in errors] == [
        ("starts_at", "required"),
        ("benefits", "unknown_benefit"),
        ("benefits", "unknown_benefit"),
    ]
    assert errors[1].message == (
        "Step 1 (lottery_draw) of the lottery.draw chain uses benefit 'big-prize', which the "
        "activity does not define."
    )


def test_check_activity_passes_a_complete_activity(quiz_chain):
    activity = ActivityFactory(template=quiz_chain.template)
    BenefitFactory(activity=activity, code="chance", kind="chance")
    assert readiness.check_activity(activity=activity) == []


def test_check_activity_refuses_an_empty_template_and_a_broken_step():
    activity = ActivityFactory(template=TemplateFactory(code="empty"), timezone="Mars/Base")
    errors = readiness.check_activity(activity=activity)
    assert [(e.path, e.code) for e in errors] == [
        ("timezone", "unknown_timezone"),
        ("template", "empty_template"),
    ]
    chain = ChainFactory(template=activity.template)
    StepFactory(chain=chain, processor="vanished_processor")
    assert [(e.path, e.code) for e in readiness.check_activity(activity=activity)] == [
        ("timezone", "unknown_timezone"),
        ("template", "unknown_processor"),
    ]


def test_save_step_refuses_a_benefit_a_scheduled_activity_lacks(quiz_chain):
    ActivityFactory(code="soon", template=quiz_chain.template, state=ActivityState.SCHEDULED)
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_step(chain=quiz_chain, processor="grant_benefit", config={"benefit": "gold"})
    assert details(excinfo) == [("config", "unknown_benefit")]
    assert excinfo.value.details[0]["message"] == (
        "Activity soon (scheduled) uses this template and has no benefit 'gold'; add the "
        "benefit to it first."
    )


# --- benefits ----------------------------------------------------------------------------------


def test_save_benefit_creates_and_bumps_config_version():
    activity = ActivityFactory()
    benefit = conf.save_benefit(
        activity=activity, code="coupon-5", kind="coupon", value=Decimal("5"), stock_total=100
    )
    assert (benefit.stock_total, benefit.stock_remaining, benefit.value) == (
        100,
        100,
        Decimal("5"),
    )
    activity.refresh_from_db()
    assert activity.config_version == 2


def test_save_benefit_validation_errors_name_fields():
    activity = ActivityFactory()
    BenefitFactory(activity=activity, code="taken")
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_benefit(
            activity=activity,
            code="Bad Code",
            kind="diamonds",
            value=Decimal("1.234"),
            stock_total=-1,
        )
    assert sorted(details(excinfo)) == [
        ("code", "invalid"),
        ("kind", "invalid_choice"),
        ("stock_total", "min_value"),
        ("value", "max_decimal_places"),
    ]
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_benefit(activity=activity, code="taken", kind="coupon")
    assert details(excinfo) == [("code", "duplicate_code")]


def test_stock_moves_by_delta_and_never_below_granted(quiz_chain):
    activity = ActivityFactory(template=quiz_chain.template, running=True)
    chance = BenefitFactory(activity=activity, code="chance", kind="chance", stock_total=5)
    for n in range(3):
        fire("quiz.completed", f"c{n}", {"score": 80}, f"k{n}")
    chance.refresh_from_db()
    assert chance.stock_remaining == 2

    conf.save_benefit(
        activity=activity, benefit=chance, code="chance", kind="chance", stock_total=8
    )
    chance.refresh_from_db()
    assert (chance.stock_total, chance.stock_remaining) == (8, 5)

    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_benefit(
            activity=activity, benefit=chance, code="chance", kind="chance", stock_total=2
        )
    assert details(excinfo) == [("stock_total", "stock_below_granted")]
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_benefit(
            activity=activity, benefit=chance, code="chance", kind="chance", stock_total=None
        )
    assert details(excinfo) == [("stock_total", "activity_running")]
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.save_benefit(activity=activity, benefit=chance, code="chances", kind="chance")
    assert details(excinfo) == [("code", "benefit_in_use")]
    chance.refresh_from_db()
    assert (chance.code, chance.stock_total, chance.stock_remaining) == ("chance", 8, 5)


def test_benefit_a_running_template_needs_cannot_go(quiz_chain):
    activity = ActivityFactory(template=quiz_chain.template, running=True)
    chance = BenefitFactory(activity=activity, code="chance", kind="chance")
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.delete_benefit(benefit=chance)
    assert details(excinfo) == [("benefits", "unknown_benefit")]
    spare = BenefitFactory(activity=activity, code="spare")
    conf.delete_benefit(benefit=spare)
    assert list(activity.benefits.values_list("code", flat=True)) == ["chance"]


# --- activity settings -------------------------------------------------------------------------


def test_update_activity_budget_by_delta(quiz_chain):
    activity = ActivityFactory(template=quiz_chain.template, running=True)
    BenefitFactory(activity=activity, code="chance", kind="chance")
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.update_activity(activity=activity, budget_total=Decimal("100"))
    assert details(excinfo) == [("budget_total", "activity_running")]

    activity.pause()
    activity.save()
    activity = conf.update_activity(activity=activity, budget_total=Decimal("100"))
    activity.resume()
    activity.save()
    activity = conf.update_activity(activity=activity, budget_total=Decimal("150.50"))
    assert (activity.budget_total, activity.budget_remaining) == (
        Decimal("150.50"),
        Decimal("150.50"),
    )
    assert activity.config_version == 3


def test_update_activity_template_and_timezone_only_while_draft(quiz_chain):
    activity = ActivityFactory(template=quiz_chain.template, state=ActivityState.SCHEDULED)
    BenefitFactory(activity=activity, code="chance", kind="chance")
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.update_activity(activity=activity, template=TemplateFactory(), timezone="UTC")
    assert details(excinfo) == [
        ("template", "activity_not_draft"),
        ("timezone", "activity_not_draft"),
    ]


def test_update_activity_moves_a_scheduled_window_through_lifecycle(quiz_chain):
    activity = ActivityFactory(template=quiz_chain.template, state=ActivityState.RUNNING)
    BenefitFactory(activity=activity, code="chance", kind="chance")
    later = activity.ends_at + dt.timedelta(days=7)
    conf.update_activity(activity=activity, ends_at=later)
    activity.refresh_from_db()
    assert activity.ends_at == later
    with pytest.raises(TransitionNotAllowed):
        conf.update_activity(activity=activity, starts_at=activity.starts_at - dt.timedelta(days=1))


def test_update_activity_draft_window_and_name():
    draft = ActivityFactory()
    later = timezone.now() + dt.timedelta(days=60)
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.update_activity(activity=draft, ends_at=draft.starts_at)
    assert details(excinfo) == [("ends_at", "invalid_window")]
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.update_activity(activity=draft, timezone="../../etc/passwd")
    assert details(excinfo) == [("timezone", "unknown_timezone")]

    updated = conf.update_activity(activity=draft, ends_at=later, name="Renamed")
    draft.refresh_from_db()
    assert (draft.ends_at, draft.name, draft.config_version) == (later, "Renamed", 2)
    assert updated.config_version == 2


def test_closed_activity_cannot_change():
    activity = ActivityFactory(state=ActivityState.ENDED)
    with pytest.raises(InvalidConfiguration) as excinfo:
        conf.update_activity(activity=activity, name="x")
    assert details(excinfo) == [("", "activity_closed")]


def test_a_new_step_goes_last_whatever_gaps_earlier_writers_left():
    chain = ChainFactory()
    for position in (0, 5, 10):
        StepFactory(chain=chain, position=position, processor="build_result")
    step = conf.save_step(chain=chain, processor="query_assets")
    assert [(s.position, s.processor) for s in chain.steps.all()] == [
        (0, "build_result"),
        (1, "build_result"),
        (2, "build_result"),
        (3, "query_assets"),
    ]
    assert step.position == 3


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_halves_of_a_loop_cannot_both_commit():
    a = ChainFactory(channel=ChannelFactory(code="a.happened"))
    b = ChainFactory(channel=ChannelFactory(code="b.happened"))
    barrier = threading.Barrier(2)

    def save(chain, target):
        try:
            barrier.wait()
            conf.save_step(chain=chain, processor="emit_event", config={"channel": target})
            return "saved"
        except InvalidConfiguration as error:
            return error.details[0]["code"]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = sorted(pool.map(save, (a, b), ("b.happened", "a.happened")))
    assert results == ["emit_cycle", "saved"]
    assert ChainStep.objects.filter(processor="emit_event").count() == 1

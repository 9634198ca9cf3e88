"""The activity definition document: schema, import (all or nothing, errors by path), export,
exact round trip, hostile input."""

import copy
import datetime as dt
import json
import os
from decimal import Decimal

import pytest
from django.utils import timezone
from jsonschema import Draft202012Validator

from activities.definitions import (
    check_definition,
    dump_definition,
    export_definition,
    import_definition,
    parse_text,
    published_schema_text,
)
from activities.definitions.loading import MAX_DOCUMENT_BYTES
from activities.definitions.schema import PUBLISHED_PATH
from activities.models import (
    Activity,
    ActivityState,
    Benefit,
    Chain,
    ChainStep,
    Channel,
    StrategyTemplate,
)
from activities.services.configuration import save_step
from core.errors import InvalidConfiguration
from segments.models import Segment

pytestmark = pytest.mark.django_db

DEMO = (
    PUBLISHED_PATH.parent.parent
    / "activities"
    / "definitions"
    / "demo"
    / "spring-quiz-lottery.yaml"
)


@pytest.fixture
def appendix():
    return parse_text(DEMO.read_text())


def counts():
    return [
        model.objects.count()
        for model in (Activity, StrategyTemplate, Chain, ChainStep, Channel, Benefit)
    ]


def problems(excinfo):
    return [(d["path"], d["code"]) for d in excinfo.value.details]


def refused(document):
    before = counts()
    with pytest.raises(InvalidConfiguration) as excinfo:
        import_definition(document=document)
    assert counts() == before
    return excinfo


# --- the published schema ----------------------------------------------------------------------


def test_published_schema_matches_the_code():
    """The file is generated from the processors' schemas; after changing one, regenerate it
    with `GAMBIT_WRITE_SCHEMA=1 pytest tests/activities/test_definitions.py -k published`."""
    if os.environ.get("GAMBIT_WRITE_SCHEMA") == "1":
        PUBLISHED_PATH.write_text(published_schema_text())
    assert PUBLISHED_PATH.read_text() == published_schema_text(), (
        "docs/activity-definition.schema.json is stale: run "
        "GAMBIT_WRITE_SCHEMA=1 pytest tests/activities/test_definitions.py -k published"
    )


def test_published_schema_validates_the_appendix_and_processor_configs(appendix):
    schema = json.loads(PUBLISHED_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert list(validator.iter_errors(appendix)) == []
    bad = copy.deepcopy(appendix)
    bad["chains"][1]["steps"][1]["config"]["prizes"][0]["weight"] = 0
    del bad["chains"][0]["steps"][2]["config"]
    paths = sorted("/".join(map(str, e.absolute_path)) for e in validator.iter_errors(bad))
    assert paths == ["chains/0/steps/2", "chains/1/steps/1/config/prizes/0/weight"]


# --- import ------------------------------------------------------------------------------------


def test_import_the_appendix(appendix):
    activity = import_definition(document=appendix)
    assert (activity.code, activity.name, activity.state) == (
        "spring-quiz-lottery",
        "Spring quiz, then a lottery",
        ActivityState.DRAFT,
    )
    assert activity.starts_at == dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
    assert activity.ends_at == dt.datetime(2026, 12, 31, 15, 59, 59, tzinfo=dt.UTC)
    assert activity.template.code == "quiz-lottery"
    assert activity.template.name == "quiz-lottery"
    chains = list(activity.template.chains.order_by("pk"))
    assert [(c.channel.code, c.requires_lock) for c in chains] == [
        ("quiz.completed", True),
        ("lottery.draw", True),
    ]
    assert [(s.position, s.processor) for s in chains[1].steps.all()] == [
        (0, "rule_check"),
        (1, "lottery_draw"),
        (2, "build_result"),
    ]
    assert chains[1].steps.get(position=1).config["fallback"] is None
    assert list(
        activity.benefits.order_by("pk").values_list(
            "code", "kind", "stock_total", "stock_remaining", "per_customer_limit", "value"
        )
    ) == [
        ("chance", "chance", None, None, None, None),
        ("big-prize", "prize", 10, 10, 1, None),
        ("coupon-5", "coupon", 1000, 1000, 1, Decimal("5.00")),
    ]


def test_round_trip_of_the_appendix_is_exact(appendix):
    exported = export_definition(activity=import_definition(document=appendix))
    assert exported == appendix
    assert parse_text(dump_definition(exported)) == appendix
    assert parse_text(dump_definition(exported, format="json")) == appendix


def test_json_documents_are_accepted(appendix):
    activity = import_definition(document=parse_text(json.dumps(appendix)))
    assert export_definition(activity=activity) == appendix


def test_a_bad_step_names_its_document_path_and_writes_nothing(appendix):
    appendix["chains"][1]["steps"][1]["config"]["prizes"][0]["weight"] = -1
    excinfo = refused(appendix)
    assert problems(excinfo) == [("chains[1].steps[1].config.prizes[0].weight", "invalid_config")]
    assert excinfo.value.message == "The activity definition is not valid."


def test_every_problem_is_reported_at_once(appendix):
    quiz = appendix["chains"][0]["steps"]
    quiz[0]["config"] = {"all": [{"field": "customer.favourite_colour", "value": "red"}]}
    quiz[2]["config"]["benefit"] = "gold"
    quiz[3]["processor"] = "send_fax"
    appendix["chains"][1]["steps"][0]["when"] = {"field": "event.x", "op": "like"}
    appendix["benefits"].append({"code": "chance", "kind": "chance"})
    appendix["chains"].append(
        {"channel": "quiz.completed", "steps": [{"processor": "build_result"}]}
    )
    excinfo = refused(appendix)
    assert problems(excinfo) == [
        ("benefits[3].code", "duplicate_benefit"),
        ("chains[0].steps[0].config.all[0].field", "unknown_field"),
        ("chains[0].steps[2].config", "unknown_benefit"),
        ("chains[0].steps[3].processor", "unknown_processor"),
        ("chains[1].steps[0].when.op", "unknown_operator"),
        ("chains[2].channel", "duplicate_chain"),
    ]
    assert excinfo.value.details[2]["message"] == (
        "Step 3 (grant_benefit) of the quiz.completed chain uses benefit 'gold', which the "
        "activity does not define."
    )


def test_structural_errors_name_the_path(appendix):
    del appendix["name"]
    appendix["colour"] = "red"
    appendix["benefits"][0]["kind"] = "diamonds"
    appendix["chains"][0]["lock"] = "yes"
    del appendix["chains"][1]["steps"][2]["processor"]
    excinfo = refused(appendix)
    assert problems(excinfo) == [
        ("", "unknown_key"),
        ("benefits[0].kind", "invalid_choice"),
        ("chains[0].lock", "invalid_type"),
        ("chains[1].steps[2].processor", "required"),
        ("name", "required"),
    ]


def test_a_document_must_be_an_object():
    assert [(e.path, e.code) for e in check_definition(document=["a"])] == [("", "invalid_type")]


def test_local_times_in_a_dst_gap_or_overlap_are_refused(appendix):
    appendix["timezone"] = "America/New_York"
    appendix["starts_at"] = "2026-03-08T02:30:00"
    appendix["ends_at"] = "2026-11-01T01:30:00"
    excinfo = refused(appendix)
    assert problems(excinfo) == [
        ("starts_at", "nonexistent_local_time"),
        ("ends_at", "ambiguous_local_time"),
    ]
    assert "does not exist in America/New_York" in excinfo.value.details[0]["message"]
    assert "happens twice in America/New_York" in excinfo.value.details[1]["message"]


def test_times_are_converted_from_the_documents_zone(appendix):
    appendix["timezone"] = "America/New_York"
    appendix["starts_at"] = "2026-07-01T09:00"
    activity = import_definition(document=appendix)
    assert activity.starts_at == dt.datetime(2026, 7, 1, 13, 0, tzinfo=dt.UTC)
    assert export_definition(activity=activity)["starts_at"] == "2026-07-01T09:00:00"


def test_bad_zone_window_and_dates(appendix):
    appendix["timezone"] = "../../../etc/passwd"
    assert problems(refused(appendix)) == [("timezone", "unknown_timezone")]
    appendix["timezone"] = "UTC"
    appendix["starts_at"] = "2026-02-30T10:00:00"
    appendix["ends_at"] = "2026-01-01T00:00:00"
    assert problems(refused(appendix)) == [("starts_at", "invalid_datetime")]
    appendix["starts_at"] = "2026-02-01T10:00:00"
    assert problems(refused(appendix)) == [("ends_at", "invalid_window")]


def test_an_existing_activity_code_is_refused(appendix):
    import_definition(document=appendix)
    assert problems(refused(appendix)) == [("code", "activity_exists")]


def test_an_equal_template_is_reused_a_different_one_refused(appendix):
    first = import_definition(document=appendix)
    appendix["code"] = "autumn-quiz-lottery"
    second = import_definition(document=appendix)
    assert second.template_id == first.template_id
    assert StrategyTemplate.objects.count() == 1

    appendix["code"] = "winter-quiz-lottery"
    appendix["chains"][0]["steps"][1]["config"]["limit"] = 2
    excinfo = refused(appendix)
    assert problems(excinfo) == [("template", "template_conflict")]
    appendix["template"] = "quiz-lottery-2"
    assert import_definition(document=appendix).template.code == "quiz-lottery-2"


def test_a_loop_inside_the_document_is_refused(appendix):
    appendix["chains"][0]["steps"].insert(
        0, {"processor": "emit_event", "config": {"channel": "lottery.draw"}}
    )
    appendix["chains"][1]["steps"].append(
        {"processor": "emit_event", "config": {"channel": "quiz.completed"}}
    )
    excinfo = refused(appendix)
    assert problems(excinfo) == [
        ("chains[0].steps[0].config", "emit_cycle"),
        ("chains[1].steps[3].config", "emit_cycle"),
    ]
    assert "quiz.completed -> lottery.draw -> quiz.completed" in excinfo.value.details[0]["message"]


def test_a_loop_through_a_stored_template_is_refused(appendix):
    other = Chain.objects.create(
        template=StrategyTemplate.objects.create(code="relay", name="relay"),
        channel=Channel.objects.create(code="task.done"),
    )
    save_step(chain=other, processor="emit_event", config={"channel": "quiz.completed"})
    appendix["chains"][0]["steps"].append(
        {"processor": "emit_event", "config": {"channel": "task.done"}}
    )
    assert problems(refused(appendix)) == [("chains[0].steps[4].config", "emit_cycle")]


def test_emitted_channels_are_created(appendix):
    appendix["chains"][0]["steps"].append(
        {"processor": "emit_event", "config": {"channel": "quiz.passed"}}
    )
    import_definition(document=appendix)
    assert set(Channel.objects.values_list("code", flat=True)) == {
        "quiz.completed",
        "lottery.draw",
        "quiz.passed",
    }


def test_segment_budget_and_options_round_trip(appendix):
    Segment.objects.create(code="vip", name="VIPs")
    appendix.update(
        segment="vip",
        budget="1000.00",
        on_exhausted="end",
        template_name="Quiz, then lottery",
    )
    appendix["benefits"][0]["name"] = "Lottery chance"
    appendix["chains"][0]["lock"] = False
    appendix["chains"][0]["steps"][3].update(
        when={"field": "event.score", "op": "exists"}, on_error="continue"
    )
    activity = import_definition(document=appendix)
    assert (activity.segment.code, activity.budget_total, activity.budget_remaining) == (
        "vip",
        Decimal("1000.00"),
        Decimal("1000.00"),
    )
    assert export_definition(activity=activity) == appendix


def test_unknown_segment_and_bad_amounts(appendix):
    appendix["segment"] = "nobody"
    appendix["budget"] = 10.555
    appendix["benefits"][2]["value"] = "5.001"
    # The structure is checked first; the rest only once it is sound.
    assert problems(refused(appendix)) == [("benefits[2].value", "invalid")]
    appendix["benefits"][2]["value"] = 5
    assert problems(refused(appendix)) == [
        ("segment", "unknown_segment"),
        ("budget", "invalid_amount"),
    ]


def test_amount_numbers_become_canonical_text(appendix):
    appendix["benefits"][2]["value"] = 5
    appendix["budget"] = 12.5
    exported = export_definition(activity=import_definition(document=appendix))
    assert (exported["benefits"][2]["value"], exported["budget"]) == ("5.00", "12.50")


def test_launch_schedules_or_starts(appendix):
    now = timezone.now().astimezone(dt.UTC).replace(tzinfo=None)

    def wall(delta):
        return (now + delta).isoformat(timespec="seconds")

    appendix.update(
        timezone="UTC", starts_at=wall(-dt.timedelta(hours=1)), ends_at=wall(dt.timedelta(days=1))
    )
    assert (
        import_definition(document=appendix, launch_bypassing_review_by="test").state
        == ActivityState.RUNNING
    )

    appendix.update(code="later", starts_at=wall(dt.timedelta(hours=1)))
    assert (
        import_definition(document=appendix, launch_bypassing_review_by="test").state
        == ActivityState.SCHEDULED
    )


def test_a_refused_launch_writes_nothing(appendix):
    appendix["ends_at"] = "2020-01-01T00:00:00"
    appendix["starts_at"] = "2019-12-01T00:00:00"
    before = counts()
    with pytest.raises(InvalidConfiguration) as excinfo:
        import_definition(document=appendix, launch_bypassing_review_by="test")
    assert problems(excinfo) == [("ends_at", "window_over")]
    assert counts() == before


def test_a_windowless_draft_round_trips(appendix):
    appendix.update(starts_at=None, ends_at=None)
    activity = import_definition(document=appendix)
    assert (activity.starts_at, activity.ends_at) == (None, None)
    assert export_definition(activity=activity) == appendix


# --- hostile text ------------------------------------------------------------------------------


def text_problems(text):
    with pytest.raises(InvalidConfiguration) as excinfo:
        import_definition(document=parse_text(text))
    return problems(excinfo)


def test_oversized_text_is_refused_before_parsing():
    assert text_problems("a" * (MAX_DOCUMENT_BYTES + 1)) == [("", "document_too_large")]


def test_billion_laughs_is_refused():
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, 9):
        prev = chr(ord("a") + n - 1)
        lines.append(f"{chr(ord('a') + n)}: &{chr(ord('a') + n)} [{', '.join(['*' + prev] * 9)}]")
    assert text_problems("\n".join(lines)) == [("", "document_too_large")]


def test_self_referencing_alias_is_refused():
    assert text_problems("code: &x [*x]") == [
        ("code" + "[0]" * 32, "document_too_deep"),
    ]


def test_python_tags_are_refused():
    assert text_problems('!!python/object/apply:os.system ["echo owned"]') == [
        ("", "invalid_syntax")
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"code": .nan}', [("code", "invalid_number")]),
        ("code: .nan", [("code", "invalid_number")]),
        ("code: 1" + "0" * 30, [("code", "invalid_number")]),
        ('code: "a\\0b"', [("code", "invalid_text")]),
        ("1: x", [("", "invalid_key")]),
        ("on: x", [("", "invalid_key")]),
        ("code: !!binary aGk=", [("code", "invalid_value")]),
        ("code: [unclosed", [("", "invalid_syntax")]),
        (b"\xff\xfe", [("", "invalid_encoding")]),
    ],
)
def test_hostile_values_are_refused_with_their_path(text, expected):
    assert text_problems(text) == expected


def test_odd_keys_are_quoted_in_paths(appendix):
    appendix["chains"][0]["steps"][0]["config"] = {"a.b": 1}
    excinfo = refused(appendix)
    assert problems(excinfo)[0][0] == "chains[0].steps[0].config"
    assert check_definition(document={**appendix, "x.y": 1})[0].message == (
        "Unknown settings: x.y."
    )


def test_a_date_written_without_quotes_is_read_as_local_time(appendix):
    text = DEMO.read_text().replace('"2026-12-01T10:00:00"', "2026-12-01T10:00:00")
    assert "starts_at: 2026-12-01T10:00:00 " in text
    activity = import_definition(document=parse_text(text))
    assert activity.starts_at == dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)


def test_coupon_code_settings_and_validity_round_trip(appendix):
    appendix["coupons_follow_orders"] = False
    appendix["benefits"][2]["coupon"] = {
        "prefix": "SPRING-",
        "length": 10,
        "first_day": "2026-12-01",
        "last_day": "2026-12-31",
        "days": 30,
    }
    appendix["benefits"].append({"code": "vouchers", "kind": "coupon", "coupon": {"codes": "pool"}})
    activity = import_definition(document=appendix)
    assert activity.coupons_follow_orders is False
    coupon = activity.benefits.get(code="coupon-5")
    assert (coupon.code_source, coupon.code_prefix, coupon.code_length, coupon.valid_days) == (
        "generated",
        "SPRING-",
        10,
        30,
    )
    # Days in the document's zone (Asia/Shanghai): from its midnight to the one ending the day.
    assert (coupon.valid_from, coupon.valid_until) == (
        dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC),
    )
    pool = activity.benefits.get(code="vouchers")
    assert (pool.code_source, pool.stock_total, pool.stock_remaining) == ("pool", 0, 0)
    assert export_definition(activity=activity) == appendix


def test_coupon_settings_are_checked_with_their_path(appendix):
    appendix["benefits"][0]["coupon"] = {"days": 3}
    appendix["benefits"][2]["coupon"] = {"first_day": "2026-12-10", "last_day": "2026-12-01"}
    appendix["benefits"].append(
        {"code": "vouchers", "kind": "coupon", "stock": 5, "coupon": {"codes": "pool"}}
    )
    appendix["benefits"].append(
        {"code": "feb", "kind": "coupon", "coupon": {"last_day": "2027-02-30"}}
    )
    assert problems(refused(appendix)) == [
        ("benefits[0].coupon", "not_a_coupon"),
        ("benefits[2].coupon.last_day", "invalid_validity"),
        ("benefits[3].stock", "pool_stock"),
        ("benefits[4].coupon.last_day", "invalid_date"),
    ]

"""Chain errors in the operator's words, on the field they concern; the condition-field picker
lists what the chain's activities actually have."""

import json

import pytest
from django.urls import reverse

from activities.admin.condition_fields import chain_condition_fields
from activities.engine.steps import check_step_shape
from activities.models import Chain, Channel
from tests.activities.test_admin_pages import chain_post
from tests.e2e.scenario import activity_on, quiz_template, role_user

pytestmark = pytest.mark.django_db


def problems(**step):
    return [(e.path, str(e.message)) for e in check_step_shape(when=None, **step)]


def test_a_pattern_error_names_the_field_and_what_it_takes():
    assert problems(
        processor="participation_limit",
        config={"key": "Check in Day!", "per": "day", "limit": 1},
    ) == [
        (
            "config.key",
            "Counter name Check in Day! is not allowed: use lower-case letters (a-z), digits, "
            "_ and -, at most 64 characters.",
        )
    ]


def test_a_missing_setting_is_reported_on_that_setting():
    assert problems(processor="grant_benefit", config={"quantity": 1}) == [
        ("config.benefit", "Benefit code is required.")
    ]


def test_numbers_are_numbers():
    assert problems(processor="grant_benefit", config={"benefit": "chance", "quantity": "two"}) == [
        ("config.quantity", "Quantity must be a whole number, not two.")
    ]


@pytest.mark.parametrize(
    ("bounds", "path", "message"),
    [
        (["abc", ""], "when.value[0]", "“is between” compares numbers or dates; abc is neither."),
        ([1, ""], "when.value[1]", "Give both ends of “is between”."),
        (
            [1, "2026-01-01"],
            "when.value",
            "Both ends of “is between” must be numbers, or both dates.",
        ),
    ],
)
def test_between_needs_both_ends_as_numbers_or_dates(bounds, path, message):
    when = {"field": "event.day", "op": "between", "value": bounds}
    errors = check_step_shape(processor="build_result", config={}, when=when)
    assert [(e.path, str(e.message)) for e in errors] == [(path, message)]


def test_between_of_numbers_or_dates_passes():
    for bounds in ([1, 7], ["1", "7.5"], ["2026-01-01", "2026-01-31"]):
        when = {"field": "event.day", "op": "between", "value": bounds}
        assert check_step_shape(processor="build_result", config={}, when=when) == []


def test_a_rule_check_refuses_comparing_words():
    config = {"all": [{"field": "event.score", "op": "gte", "value": "sixty"}]}
    assert problems(processor="rule_check", config=config) == [
        ("config.all[0].value", "“at least” compares numbers or dates; sixty is neither.")
    ]


def test_the_chain_form_puts_the_error_on_the_field_in_words(client):
    client.force_login(role_user(None))
    activity = activity_on(quiz_template())
    chain = Chain.objects.get(template=activity.template)
    steps = list(chain.steps.order_by("position"))
    rows = [(s, s.processor, s.config, i) for i, s in enumerate(steps)]
    rows[1] = (
        steps[1],
        "participation_limit",
        {"key": "Check in Day!", "per": "day", "limit": 1},
        1,
    )
    response = client.post(
        reverse("admin:activities_chain_change", args=[chain.pk]), chain_post(chain, rows)
    )
    form = response.context["inline_admin_formsets"][0].formset.forms[1]
    message = (
        "Counter name Check in Day! is not allowed: use lower-case letters (a-z), digits, "
        "_ and -, at most 64 characters."
    )
    assert form.errors["config"] == [message]
    assert form.fields["config"].widget.errors == [{"path": "key", "message": message}]


def test_the_field_picker_lists_payload_fields_benefits_and_customer_fields():
    activity = activity_on(quiz_template())
    Channel.objects.filter(code="quiz.completed").update(
        payload_schema={
            "type": "object",
            "properties": {
                "score": {"type": "integer", "title": "Score"},
                "day": {"type": "string", "format": "date"},
                "level": {"type": "string", "enum": ["easy", "hard"]},
                "answers": {"type": "object", "properties": {"right": {"type": "number"}}},
            },
        }
    )
    chain = Chain.objects.select_related("channel").get(template=activity.template)
    fields = {f["name"]: f for f in chain_condition_fields(chain=chain)}
    assert (fields["event.score"]["label"], fields["event.score"]["type"]) == ("Score", "integer")
    assert fields["event.day"]["type"] == "date"
    assert fields["event.level"]["choices"] == [["easy", "easy"], ["hard", "hard"]]
    assert fields["event.answers.right"]["type"] == "number"
    assert fields["participation.chance"]["type"] == "integer"
    assert fields["customer.birthday"]["type"] == "date"
    assert fields["event."]["prefix"] is True
    page = json.dumps(fields["event.score"]["operators"])
    assert "between" in page

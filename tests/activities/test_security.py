"""Hostile input is refused with a clear error, never run, never a 500: template code, SQL in
rule values, oversized or deeply nested bodies, huge condition trees, path tricks in imports."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activities.definitions import check_definition
from activities.engine.errors import error_details
from core.rules import MAX_DEPTH, MAX_NODES, RuleError, parse
from notifications import rendering
from notifications.models import NotificationTemplate
from segments.models import Customer
from segments.rules import check_rule, compile_rule
from segments.services.segments import validate_segment_rule
from tests.factories import build_quiz_lottery

pytestmark = pytest.mark.django_db

DEMO = "activities/definitions/demo/spring-quiz-lottery.yaml"


# --- template code in notification templates ------------------------------------------------

TEMPLATE_CODE = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ customer.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ config.items() }}",
    "{{ request.application.__self__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ customer.name|attr('__class__') }}",
    "{% import 'os' as os %}",
    "{% extends '/etc/passwd' %}",
    "{% set x = namespace() %}",
    "{{ 9**9**9 }}",
]


@pytest.mark.parametrize("source", TEMPLATE_CODE)
def test_template_code_cannot_be_saved_in_any_field(source):
    for fields in ({"body": source}, {"subject": source}, {"fields": {"thing1": source}}):
        template = NotificationTemplate(
            code=f"t-{uuid.uuid4().hex[:8]}",
            name="hostile",
            channel="webhook",
            **{"body": "Hi {{ customer.name }}", **fields},
        )
        with pytest.raises(ValidationError) as excinfo:
            template.save()
        field = next(iter(fields))
        messages = excinfo.value.message_dict[field]
        assert messages, (source, field)
        assert any(
            "not allowed" in message or "Unknown placeholder" in message for message in messages
        ), messages
    assert not NotificationTemplate.objects.exists()


@pytest.mark.parametrize("source", TEMPLATE_CODE[:5])
def test_template_code_that_reached_the_database_still_cannot_run(source):
    """Defence in depth: a row written around the model (raw SQL, a bad migration) renders
    in the sandbox, which refuses attribute access to internals."""
    with pytest.raises(rendering.RenderError):
        rendering.render(source, rendering.Scope({"customer": {"name": "Ann"}}))


# --- SQL in rule values -----------------------------------------------------------------------

SQL_VALUES = [
    "' OR '1'='1",
    "gold'; DROP TABLE segments_customer; --",
    '" OR 1=1 --',
    "%' OR name LIKE '%",
    "1) OR (1=1",
    "\\'; SELECT pg_sleep(10); --",
]


@pytest.fixture
def people(db):
    for external_id, level in (("ann", "gold"), ("bob", "silver"), ("cyd", "")):
        Customer.objects.create(external_id=external_id, level=level, attributes={"city": "x"})


def members(rule) -> set[str]:
    return set(
        Customer.objects.filter(compile_rule(check_rule(rule))).values_list(
            "external_id", flat=True
        )
    )


@pytest.mark.parametrize("value", SQL_VALUES)
def test_sql_in_a_rule_value_is_a_literal_that_matches_nothing(people, value):
    rules = [
        {"field": "customer.level", "op": "eq", "value": value},
        {"field": "customer.level", "op": "in", "value": [value, "platinum"]},
        {"field": "customer.name", "op": "contains", "value": value},
        {"field": "customer.attributes.city", "op": "eq", "value": value},
        {"field": "customer.tags", "op": "contains", "value": value},
    ]
    for rule in rules:
        with CaptureQueriesContext(connection) as queries:
            assert members(rule) == set(), rule
        # The value travels as a bound parameter: it never appears in the SQL text.
        assert value not in queries[0]["sql"].split(" WHERE ")[0]
    assert Customer.objects.count() == 3
    # The chains' predicate compares it as text, too.
    from core.rules import compile_predicate

    predicate = compile_predicate(parse({"field": "event.level", "op": "eq", "value": value}))
    assert predicate(lambda field: "gold") is False


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("customer.level; DROP TABLE segments_customer", "unknown_field"),
        ("customer.attributes.a'--", "unknown_field"),
        ("customer.attributes.city') OR ('1'='1", "unknown_field"),
        ("customer.orders.paid_last_1d; --", "unknown_field"),
        ("customer.orders.paid_last_99999d", "unknown_field"),
        ("customer.__class__", "unknown_field"),
    ],
)
def test_sql_in_a_rule_field_is_refused_with_its_path(field, code):
    with pytest.raises(RuleError) as excinfo:
        check_rule({"all": [{"field": field, "op": "eq", "value": 1}]})
    assert (excinfo.value.path, excinfo.value.code) == ("all[0].field", code)


# --- deep and huge condition trees ------------------------------------------------------------


def demo_document() -> dict:
    import yaml

    with open(DEMO) as handle:
        return yaml.safe_load(handle)


def nested(depth: int) -> dict:
    tree: dict = {"field": "event.score", "op": "gte", "value": 1}
    for _ in range(depth):
        tree = {"not": tree}
    return tree


def test_a_tree_deeper_than_max_depth_is_refused():
    parse(nested(MAX_DEPTH))
    with pytest.raises(RuleError) as excinfo:
        parse(nested(MAX_DEPTH + 1))
    assert excinfo.value.code == "rule_too_deep"
    assert excinfo.value.path == ".".join(["not"] * (MAX_DEPTH + 1))
    assert str(MAX_DEPTH) in excinfo.value.message


def test_a_tree_with_too_many_nodes_is_refused():
    leaf = {"field": "event.score", "op": "gte", "value": 1}
    parse({"any": [leaf] * (MAX_NODES - 1)})
    with pytest.raises(RuleError) as excinfo:
        parse({"any": [leaf] * MAX_NODES})
    assert (excinfo.value.code, excinfo.value.path) == ("rule_too_large", f"any[{MAX_NODES - 1}]")


def test_a_tree_nested_ten_thousand_levels_is_refused_without_recursion_error():
    with pytest.raises(RuleError) as excinfo:
        parse(nested(10_000))
    assert excinfo.value.code == "rule_too_deep"


def test_huge_trees_are_refused_by_segments_and_by_the_importer():
    with pytest.raises(Exception) as excinfo:
        validate_segment_rule(kind="dynamic", rule={"not": nested(MAX_DEPTH)})
    assert excinfo.value.details[0]["code"] == "rule_too_deep"

    document = demo_document()
    document["chains"][0]["steps"][0]["config"] = nested(MAX_DEPTH + 1)
    problems = error_details(check_definition(document=document))
    assert [(p["path"], p["code"]) for p in problems] == [
        (
            "chains[0].steps[0].config" + "".join(".not" for _ in range(MAX_DEPTH + 1)),
            "rule_too_deep",
        )
    ]


def test_a_huge_list_in_a_rule_is_refused():
    with pytest.raises(RuleError) as excinfo:
        parse({"field": "event.code", "op": "in", "value": list(range(1001))})
    assert (excinfo.value.code, excinfo.value.path) == ("invalid_value", "value")


# --- oversized and hostile request bodies -----------------------------------------------------


def post_raw(api, body: bytes, path: str = "/api/v1/events/"):
    return api.generic(
        "POST",
        path,
        body,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


def test_an_oversized_body_is_413_payload_too_large(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"channel": "quiz.completed", "customer": "c", "payload": {"x": "y" * 2000}})
    response = post_raw(api, body.encode())
    assert response.status_code == 413
    assert response.json() == {
        "code": "payload_too_large",
        "detail": "The request body is larger than 1024 bytes.",
    }


def test_the_default_limit_takes_a_full_bulk_sync_and_refuses_more(api, settings):
    rows = [
        {"external_id": f"c-{i}", "name": "A Name", "email": f"c{i}@example.com", "tags": ["vip"]}
        for i in range(10_000)
    ]
    body = json.dumps({"customers": rows}).encode()
    assert len(body) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    huge = post_raw(
        api, b'{"customers": [' + b'{"name": "x"},' * 700_000 + b"{}]}", "/api/v1/customers/bulk/"
    )
    assert (huge.status_code, huge.json()["code"]) == (413, "payload_too_large")
    assert not Customer.objects.exists()


def test_a_deeply_nested_body_is_400_payload_too_deep(api):
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 70 + b"1" + b"}" * 70):
        response = post_raw(api, body)
        assert response.status_code == 400
        assert response.json()["code"] == "payload_too_deep"


def test_text_postgresql_cannot_store_is_400_invalid_text(api):
    build_quiz_lottery()
    for text in ('"a\\u0000b"', '"\\ud800"'):
        body = f'{{"channel": "quiz.completed", "customer": "c1", "payload": {{"k": {text}}}}}'
        response = post_raw(api, body.encode())
        assert response.status_code == 400, text
        assert response.json()["code"] == "invalid_text"


def test_nan_and_infinity_are_not_json(api):
    response = post_raw(
        api, b'{"channel": "quiz.completed", "customer": "c", "payload": {"x": NaN}}'
    )
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")


def test_an_oversized_admin_post_is_a_400_not_a_500(admin_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = admin_client.post("/admin/activities/channel/add/", {"code": "x" * 5000})
    assert response.status_code == 400


# --- path tricks in imports -------------------------------------------------------------------


def test_a_fifo_is_refused_instead_of_hanging(tmp_path):
    fifo = tmp_path / "activity.yaml"
    os.mkfifo(fifo)
    with pytest.raises(CommandError) as excinfo:
        call_command("import_activity", str(fifo))
    assert str(excinfo.value) == f"{fifo} is not a regular file."


def test_a_symlink_to_a_device_is_refused(tmp_path):
    link = tmp_path / "activity.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(CommandError) as excinfo:
        call_command("import_activity", str(link))
    assert str(excinfo.value) == f"{link} is not a regular file."


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("code", "../../etc/passwd", "code"),
        ("code", "spring/../../admin", "code"),
        ("code", "\u0455pring", "code"),  # a Cyrillic "s"
        ("template", "../templates/base", "template"),
        ("segment", "../../secret", "segment"),
        ("timezone", "../../../etc/localtime", "timezone"),
    ],
)
def test_path_tricks_in_a_document_are_refused_with_their_path(key, value, path):
    document = demo_document()
    document[key] = value
    problems = error_details(check_definition(document=document))
    assert problems, (key, value)
    assert problems[0]["path"] == path


def test_a_key_cannot_pose_as_another_path():
    document = demo_document()
    document["chains[0].steps"] = []
    problems = error_details(check_definition(document=document))
    assert problems[0]["message"] == ("Unknown settings: chains[0].steps.")


def test_a_compressing_charset_is_refused(api):
    import bz2

    body = bz2.compress(b'{"channel": "quiz.completed", "customer": "c", "payload": {}}')
    response = api.generic(
        "POST",
        "/api/v1/events/",
        body,
        content_type="application/json; charset=bz2_codec",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")
    assert "bz2_codec" in response.json()["detail"]

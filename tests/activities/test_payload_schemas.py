"""A channel's payload schema is checked when saved and can never make an event a 500."""

import json

import pytest
from django.urls import reverse
from django.utils import translation

from activities.models import Channel, Event
from activities.services import payload_schemas
from tests.factories import build_quiz_lottery

pytestmark = pytest.mark.django_db

BROKEN = {"type": "object", "properties": {"score": {"type": 5}}}


def post_event(api, payload, key="k-1"):
    return api.post(
        "/api/v1/events/",
        {"channel": "quiz.completed", "customer": "alice", "payload": payload},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def save_channel(admin_client, schema):
    return admin_client.post(
        reverse("admin:activities_channel_add"),
        {"code": "vote.cast", "name": "", "description": "", "payload_schema": json.dumps(schema)},
    )


def test_an_invalid_schema_is_a_field_error_in_the_admin(admin_client):
    response = save_channel(admin_client, BROKEN)
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["payload_schema"]
    assert error.startswith("The schema is not valid JSON Schema (at properties.score.type):")
    assert not Channel.objects.filter(code="vote.cast").exists()


def test_pattern_is_refused_where_it_stands(admin_client):
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}}
    response = save_channel(admin_client, schema)
    assert response.context["adminform"].form.errors["payload_schema"] == [
        "pattern is not allowed (at properties.name): use enum, const or lengths instead."
    ]


def test_the_field_error_speaks_chinese_under_zh_hans():
    with translation.override("zh-hans"):
        [problem] = payload_schemas.schema_problems([1])
    assert problem == 'Schema 必须是一个 JSON 对象，例如 {"type": "object"}。'  # noqa: RUF001  (the Chinese text itself)


def test_a_good_schema_saves(admin_client):
    response = save_channel(admin_client, {"type": "object", "required": ["candidate"]})
    assert response.status_code == 302
    assert Channel.objects.get(code="vote.cast").payload_schema == {
        "type": "object",
        "required": ["candidate"],
    }


def test_an_event_on_a_channel_with_a_broken_stored_schema_is_400(api):
    build_quiz_lottery()
    Channel.objects.filter(code="quiz.completed").update(payload_schema=BROKEN)
    response = post_event(api, {"score": 80})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_payload"
    assert response.json()["errors"] == [
        {"path": "payload", "message": "The channel's payload schema is not usable."}
    ]
    assert not Event.objects.exists()


def test_the_compiled_validator_is_built_once_per_schema(api):
    build_quiz_lottery()
    Channel.objects.filter(code="quiz.completed").update(
        payload_schema={"type": "object", "required": ["score"]}
    )
    payload_schemas._validator.cache_clear()
    assert post_event(api, {"score": 1}, key="a").status_code == 202
    assert post_event(api, {"score": 2}, key="b").status_code == 202
    assert post_event(api, {}, key="c").status_code == 400
    info = payload_schemas._validator.cache_info()
    assert (info.misses, info.hits) == (1, 2)

"""The storefront events API: contract, idempotency and every bad input as a stable 4xx."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activities.models import Channel, Event
from tests.factories import build_quiz_lottery, make_api_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"


def post(api, body, key="key-1", **headers):
    return api.post(
        URL,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
        **headers,
    )


@pytest.fixture
def activity():
    return build_quiz_lottery()


QUIZ = {"channel": "quiz.completed", "customer": "alice", "payload": {"score": 80}}


def test_accepts_with_202_and_creates_the_customer(api, activity):
    response = post(api, QUIZ)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert body["url"].endswith(f"/api/v1/events/{body['id']}/")
    event = Event.objects.get(pk=body["id"])
    assert (event.customer.external_id, event.payload) == ("alice", {"score": 80})


def test_same_key_same_body_is_the_same_event(api, activity):
    first = post(api, QUIZ).json()
    again = post(api, QUIZ)
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert Event.objects.count() == 1


def test_same_key_other_body_is_422(api, activity):
    post(api, QUIZ)
    response = post(api, {**QUIZ, "payload": {"score": 81}})
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Event.objects.count() == 1


def test_keys_are_per_client(api, client, activity):
    post(api, QUIZ)
    _, other = make_api_key("other-shop")
    response = client.post(
        URL,
        data=json.dumps(QUIZ),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="key-1",
        HTTP_AUTHORIZATION=f"Api-Key {other}",
    )
    assert response.status_code == 202
    assert Event.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "key", "status", "code"),
    [
        (QUIZ, "", 400, "idempotency_key_missing"),
        (QUIZ, "k" * 256, 400, "idempotency_key_too_long"),
        ({**QUIZ, "channel": "no.such"}, "k", 400, "unknown_channel"),
        ({**QUIZ, "activity": "no-such"}, "k", 400, "unknown_activity"),
        ({"channel": "quiz.completed"}, "k", 400, "invalid_request"),
        ({**QUIZ, "payload": "not an object"}, "k", 400, "invalid_request"),
        ({**QUIZ, "customer": "c" * 129}, "k", 400, "invalid_request"),
    ],
)
def test_bad_input_is_a_stable_4xx_and_writes_nothing(api, activity, body, key, status, code):
    response = post(api, body, key=key)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert Event.objects.count() == 0


def test_malformed_json_is_400(api, activity):
    response = api.post(
        URL, data="{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")


def test_payload_breaking_the_channel_schema_names_the_field(api, activity):
    Channel.objects.filter(code="quiz.completed").update(
        payload_schema={
            "type": "object",
            "properties": {"score": {"type": "integer", "minimum": 0}},
            "required": ["score"],
        }
    )
    response = post(api, {**QUIZ, "payload": {"score": "high"}})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_payload"
    assert [error["path"] for error in body["errors"]] == ["payload.score"]
    assert Event.objects.count() == 0


def test_no_key_is_401_and_a_revoked_key_is_401(client, activity):
    response = client.post(
        URL, data=json.dumps(QUIZ), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    key, raw = make_api_key("revoked")
    key.revoked = True
    key.save()
    response = client.post(
        URL,
        data=json.dumps(QUIZ),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
        HTTP_AUTHORIZATION=f"Api-Key {raw}",
    )
    assert response.status_code == 401


def test_a_key_without_the_events_scope_is_403(client, activity):
    _, raw = make_api_key("customers-only", scopes=["customers"])
    response = client.post(
        URL,
        data=json.dumps(QUIZ),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
        HTTP_AUTHORIZATION=f"Api-Key {raw}",
    )
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_another_clients_event_is_404(api, client, activity):
    event_id = post(api, QUIZ).json()["id"]
    _, other = make_api_key("other-shop")
    response = client.get(f"{URL}{event_id}/", HTTP_AUTHORIZATION=f"Api-Key {other}")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_event_detail_lists_runs_after_processing(api, activity):
    from activities.services.events import process_event

    event_id = post(api, QUIZ).json()["id"]
    process_event(event_id=event_id)
    with CaptureQueriesContext(connection) as queries:
        body = api.get(f"{URL}{event_id}/").json()
    assert body["status"] == "done"
    [run] = body["runs"]
    assert (run["activity"], run["outcome"], run["reason"]) == ("spring", "granted", "")
    assert [(g["benefit"], g["quantity"], g["state"]) for g in run["grants"]] == [
        ("chance", 1, "issued")
    ]
    assert [step["outcome"] for step in run["steps"]] == ["passed"] * 4
    assert len(queries) <= 8


def test_running_activities_and_participation(api, activity):
    from activities.services.events import process_event

    process_event(event_id=post(api, QUIZ).json()["id"])
    listing = api.get("/api/v1/activities/").json()
    assert [(a["code"], a["channels"]) for a in listing] == [
        ("spring", ["lottery.draw", "quiz.completed"])
    ]
    participation = api.get("/api/v1/activities/spring/participation/alice/").json()
    assert participation["balances"] == {"big-prize": 0, "chance": 1, "coupon-5": 0}
    assert list(participation["counters"]["quiz-chance"].values()) == [1]
    missing = api.get("/api/v1/activities/nope/participation/alice/")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/events/" in schema.content
    assert client.get("/api/docs/").status_code == 200

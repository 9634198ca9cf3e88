"""Malformed requests an ordinary storefront key can send: each is a JSON 4xx with a stable code,
and nothing is stored."""

import pytest

from activities.models import Event
from segments.models import Customer, Order
from tests.factories import build_quiz_lottery

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events/"


def test_a_nul_byte_in_the_path_is_400_json(api):
    response = api.get("/api/v1/customers/a%00b/grants/")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "invalid_path"


@pytest.mark.parametrize(
    "path", ["/api/v1/events/not-a-uuid/", "/api/v1/broadcasts/x/", "/api/v1/nothing-here/"]
)
def test_a_path_no_route_matches_is_a_json_404(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "detail": "No such resource."}


def test_the_admin_keeps_django_s_own_404_page(admin_client):
    response = admin_client.get("/admin/no-such-page/x/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_control_character_in_an_order_path_stores_nothing(api):
    response = api.put(
        "/api/v1/orders/o%07rder/",
        {"customer": "alice", "amount": "10.00", "placed_at": "2026-12-01T10:00:00Z"},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_path")
    assert not Order.objects.exists()


def test_prefer_wait_with_thousands_of_digits_is_400_and_accepts_nothing(api):
    build_quiz_lottery()
    response = api.post(
        EVENTS,
        {"channel": "quiz.completed", "customer": "alice", "payload": {"score": 80}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-1",
        HTTP_PREFER="wait=" + "9" * 5000,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_prefer"
    assert not Event.objects.exists()


def test_an_event_for_a_customer_id_with_control_characters_is_refused(api):
    build_quiz_lottery()
    response = api.post(
        EVENTS,
        {"channel": "quiz.completed", "customer": "al\x01ice", "payload": {}},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-2",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request"
    assert [(e["path"], e["code"]) for e in body["errors"]] == [("customer", "control_characters")]
    assert not Customer.objects.exists()


def test_a_bulk_row_with_control_characters_in_its_id_is_rejected_alone(api):
    response = api.post(
        "/api/v1/customers/bulk/",
        {"customers": [{"external_id": "bo\x07b"}, {"external_id": "carol"}]},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["received"], body["stored"]) == (2, 1)
    assert [(e["field"], e["code"]) for e in body["rejected"][0]["errors"]] == [
        ("external_id", "control_characters")
    ]
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["carol"]

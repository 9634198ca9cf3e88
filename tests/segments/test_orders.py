"""Orders: sync, every allowed and disallowed transition through the API and the admin, the
channel event each transition raises, and a first paid order granting a coupon end to end."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from activities.models import Event, Grant, RunOutcome
from activities.services.events import process_event
from segments.models import Order, OrderState
from tests.factories import (
    ActivityFactory,
    BenefitFactory,
    ChainFactory,
    ChannelFactory,
    StepFactory,
)
from tests.segments.factories import CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

ALLOWED = {
    ("pending", "pay"): "paid",
    ("pending", "cancel"): "cancelled",
    ("paid", "ship"): "shipped",
    ("paid", "cancel"): "cancelled",
    ("paid", "refund"): "refunded",
    ("shipped", "complete"): "completed",
    ("shipped", "refund"): "refunded",
}
TRANSITIONS = ["pay", "ship", "complete", "cancel", "refund"]
ALLOWED_FROM = {
    state: sorted(t for (source, t) in ALLOWED if source == state) for state in OrderState.values
}
TARGET = {
    "pay": "paid",
    "ship": "shipped",
    "complete": "completed",
    "cancel": "cancelled",
    "refund": "refunded",
}
ALL_PAIRS = [(state, name) for state in OrderState.values for name in TRANSITIONS]


def order_in(state: str, external_id: str = "o-1") -> Order:
    paid_at = None if state in ("pending", "cancelled") else dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    return OrderFactory(external_id=external_id, state=state, paid_at=paid_at)


# --- sync ------------------------------------------------------------------------------------


def test_put_creates_a_pending_order_and_a_bare_customer(api):
    response = api.put(
        "/api/v1/orders/o-1/",
        {"customer": "c-9", "amount": "99.90", "placed_at": "2026-01-01T10:00:00+08:00"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["state"], body["customer"], body["amount"]) == ("pending", "c-9", "99.90")
    assert body["allowed_transitions"] == ["cancel", "pay"]
    order = Order.objects.get(external_id="o-1")
    assert order.placed_at == dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC)
    assert not Event.objects.exists()


def test_put_updates_the_data_of_an_existing_order(api):
    order_in("paid")
    customer = Order.objects.get().customer.external_id
    response = api.put(
        "/api/v1/orders/o-1/",
        {
            "customer": customer,
            "amount": "5.00",
            "currency": "USD",
            "placed_at": "2026-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 200
    order = Order.objects.get()
    assert (order.amount, order.currency, order.state) == (Decimal("5.00"), "USD", "paid")


def test_put_records_history_without_events(api):
    response = api.put(
        "/api/v1/orders/old-1/",
        {
            "customer": "c-1",
            "amount": "10",
            "placed_at": "2025-01-01T00:00:00Z",
            "state": "completed",
        },
        format="json",
    )
    assert response.status_code == 201
    order = Order.objects.get()
    assert (order.state, order.paid_at) == ("completed", order.placed_at)
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"customer": "c", "amount": "-1", "placed_at": "2026-01-01T00:00:00Z"},
            400,
            "invalid_request",
        ),
        (
            {"customer": "c", "amount": "abc", "placed_at": "2026-01-01T00:00:00Z"},
            400,
            "invalid_request",
        ),
        ({"customer": "c", "amount": "1"}, 400, "invalid_request"),
        (
            {
                "customer": "c",
                "amount": "1",
                "placed_at": "2026-01-01T00:00:00Z",
                "currency": "rmb",
            },
            400,
            "invalid_request",
        ),
        (
            {"customer": "c", "amount": "1", "placed_at": "2026-01-01T00:00:00Z", "state": "lost"},
            400,
            "invalid_request",
        ),
        (
            {
                "customer": "c",
                "amount": "1",
                "placed_at": "2026-01-01T00:00:00Z",
                "paid_at": "2026-01-01T00:00:00Z",
            },
            400,
            "invalid_order",
        ),
    ],
)
def test_bad_orders_are_refused_and_nothing_is_written(api, body, status, code):
    response = api.put("/api/v1/orders/o-x/", body, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert not Order.objects.exists()


def test_an_orders_customer_never_changes(api):
    order_in("pending")
    response = api.put(
        "/api/v1/orders/o-1/",
        {"customer": "somebody-else", "amount": "1", "placed_at": "2026-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_order"


def test_put_cannot_change_the_state(api):
    order = order_in("pending")
    response = api.put(
        "/api/v1/orders/o-1/",
        {
            "customer": order.customer.external_id,
            "amount": "1",
            "placed_at": "2026-01-01T00:00:00Z",
            "state": "paid",
        },
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["allowed_transitions"] == ["cancel", "pay"]
    order.refresh_from_db()
    assert order.state == "pending"


# --- transitions through the API --------------------------------------------------------------


@pytest.mark.parametrize(("state", "transition"), ALL_PAIRS)
def test_every_transition_through_the_api(api, state, transition):
    order = order_in(state)
    response = api.post(f"/api/v1/orders/o-1/{transition}/", {}, format="json")
    order.refresh_from_db()
    body = response.json()
    if (state, transition) in ALLOWED:
        assert response.status_code == 200, body
        assert body["changed"] is True
        assert order.state == body["state"] == ALLOWED[(state, transition)]
        event = Event.objects.get()
        assert event.channel.code == f"order.{order.state}"
        assert event.idempotency_key == f"order:{order.pk}:{transition}"
        assert event.customer_id == order.customer_id
        assert event.payload["order"] == "o-1"
        assert event.payload["transition"] == transition
        assert getattr(order, f"{order.state}_at") is not None
    elif TARGET[transition] == state:
        # A retry of what already happened: nothing changes, no second event.
        assert response.status_code == 200
        assert body["changed"] is False
        assert order.state == state
        assert not Event.objects.exists()
    else:
        assert response.status_code == 409
        assert body["code"] == "transition_not_allowed"
        assert body["allowed_transitions"] == ALLOWED_FROM[state]
        assert order.state == state
        assert not Event.objects.exists()


def test_unknown_transition_and_unknown_order(api):
    order_in("pending")
    response = api.post("/api/v1/orders/o-1/explode/", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "unknown_transition")
    response = api.post("/api/v1/orders/nope/pay/", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_transition_takes_the_storefront_time(api):
    order_in("pending")
    api.post("/api/v1/orders/o-1/pay/", {"at": "2026-02-01T12:00:00+08:00"}, format="json")
    assert Order.objects.get().paid_at == dt.datetime(2026, 2, 1, 4, tzinfo=dt.UTC)
    response = api.post("/api/v1/orders/o-1/ship/", {"at": "soon"}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_request")


def test_keys_need_the_orders_scope(db):
    from rest_framework.test import APIClient

    from tests.factories import make_api_key

    _, raw = make_api_key(scopes=["customers"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.post("/api/v1/orders/o/pay/", {}, format="json").status_code == 403


def test_first_paid_order_flag(api):
    customer = CustomerFactory(external_id="buyer")
    OrderFactory(external_id="a", customer=customer)
    OrderFactory(external_id="b", customer=customer)
    api.post("/api/v1/orders/a/pay/", {}, format="json")
    api.post("/api/v1/orders/b/pay/", {}, format="json")
    api.post("/api/v1/orders/a/ship/", {}, format="json")
    flags = {
        e.idempotency_key.split(":", 2)[2] + ":" + e.payload["order"]: e.payload["first_paid_order"]
        for e in Event.objects.all()
    }
    assert flags == {"pay:a": True, "pay:b": False, "ship:a": True}


# --- transitions through the admin ------------------------------------------------------------


@pytest.mark.parametrize(("state", "transition"), ALL_PAIRS)
def test_every_transition_through_the_admin(admin_client, state, transition):
    order = order_in(state)
    url = reverse(
        "admin:segments_order_transition",
        kwargs={"object_id": order.pk, "transition_name": transition},
    )
    response = admin_client.post(url, {"confirmed": "yes"})
    assert response.status_code == 302
    order.refresh_from_db()
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    if (state, transition) in ALLOWED:
        assert order.state == ALLOWED[(state, transition)]
        assert Event.objects.get().channel.code == f"order.{order.state}"
        assert messages == [f"Order {order.external_id} is {order.state}."]
    else:
        assert order.state == state
        assert not Event.objects.exists()
        assert messages == ["This action is not allowed for this record now."]


def test_admin_change_page_shows_only_allowed_buttons(admin_client):
    order = order_in("paid")
    page = admin_client.get(
        reverse("admin:segments_order_change", args=[order.pk])
    ).content.decode()
    for name in ("ship", "cancel", "refund"):
        assert f'data-action="{name}"' in page
    for name in ("pay", "complete"):
        assert f'data-action="{name}"' not in page


# --- end to end: a first paid order grants a coupon through an activity chain --------------------


@pytest.fixture
def welcome_coupon():
    chain = ChainFactory(channel=ChannelFactory(code="order.paid"))
    StepFactory(
        chain=chain,
        position=0,
        processor="rule_check",
        config={"all": [{"field": "event.first_paid_order", "op": "eq", "value": True}]},
    )
    StepFactory(chain=chain, position=1, processor="grant_benefit", config={"benefit": "welcome"})
    StepFactory(chain=chain, position=2, processor="build_result")
    activity = ActivityFactory(code="first-order-coupon", template=chain.template, running=True)
    BenefitFactory(
        activity=activity,
        code="welcome",
        kind="coupon",
        stock_total=100,
        per_customer_limit=1,
        value="10.00",
    )
    return activity


def test_first_paid_order_grants_a_coupon_end_to_end(api, welcome_coupon):
    for order in ("first", "second"):
        response = api.put(
            f"/api/v1/orders/{order}/",
            {"customer": "shopper", "amount": "59.00", "placed_at": "2026-01-01T00:00:00Z"},
            format="json",
        )
        assert response.status_code == 201
    assert api.post("/api/v1/orders/first/pay/", {}, format="json").status_code == 200
    first = Event.objects.get(idempotency_key__endswith=":pay")
    process_event(event_id=first.pk)
    grant = Grant.objects.get()
    assert (grant.customer.external_id, grant.benefit.code, grant.activity_id) == (
        "shopper",
        "welcome",
        welcome_coupon.pk,
    )
    run = first.runs.get()
    assert run.outcome == RunOutcome.GRANTED

    assert api.post("/api/v1/orders/second/pay/", {}, format="json").status_code == 200
    second = Event.objects.exclude(pk=first.pk).get()
    assert second.payload["first_paid_order"] is False
    process_event(event_id=second.pk)
    assert second.runs.get().outcome == RunOutcome.REJECTED
    assert Grant.objects.count() == 1

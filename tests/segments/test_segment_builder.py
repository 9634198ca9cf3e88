"""The segment rule builder: the field catalogue it offers, the live count endpoint (count,
sample, errors by path, staff only) and the form without raw JSON."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from segments.models import Order, OrderState, Segment
from segments.rule_catalog import segment_fields
from segments.rules import check_rule
from tests.segments.factories import CustomerFactory, TagFactory

pytestmark = pytest.mark.django_db

COUNT_URL = "admin:segments_segment_count"


def test_catalogue_offers_profile_fields_tags_and_order_windows():
    TagFactory(code="vip", name="VIP")
    fields = {f["name"]: f for f in segment_fields()}
    assert fields["customer.level"]["type"] == "string"
    assert fields["customer.birthday"]["type"] == "date"
    assert fields["customer.email_consent"]["operators"] == ["eq", "ne"]
    assert fields["customer.tags"]["choices"] == [["vip", "VIP (vip)"]]
    assert fields["customer.tags"]["operators"] == ["contains", "in", "not_in", "exists"]
    window = fields["customer.orders.paid_last_{n}d"]
    assert window["type"] == "integer"
    assert window["window"]["max"] == 3650
    assert "exists" in fields["customer.orders.days_since_last"]["operators"]
    # Every offered field (a window filled in) is one the rule checker accepts.
    for name, spec in fields.items():
        field = name.replace("{n}", "2") + ("city" if spec.get("prefix") else "")
        if spec.get("prefix") or spec["type"] == "datetime":
            check_rule({"field": field, "op": "exists", "value": True})
        elif spec["type"] == "bool":
            check_rule({"field": field, "op": "eq", "value": True})
        else:
            check_rule({"field": field, "op": "in", "value": []})


def test_live_count_returns_the_count_and_a_sample(admin_client):
    vip = TagFactory(code="vip")
    buyers = [CustomerFactory(level="gold") for _ in range(3)]
    for customer in buyers[:2]:
        customer.tag_set.add(vip)
        Order.objects.create(
            external_id=f"o-{customer.pk}",
            customer=customer,
            amount="10.00",
            state=OrderState.PAID,
            placed_at=timezone.now(),
            paid_at=timezone.now(),
        )
    rule = {
        "all": [
            {"field": "customer.tags", "op": "in", "value": ["vip"]},
            {"field": "customer.orders.paid_last_2d", "op": "gte", "value": 1},
        ]
    }
    response = admin_client.post(reverse(COUNT_URL), {"rule": json.dumps(rule)})
    body = response.json()
    assert body["count"] == 2
    assert [item["label"] for item in body["sample"]] == [str(c) for c in buyers[:2]]
    assert body["sample"][0]["url"] == reverse(
        "admin:segments_customer_change", args=[buyers[0].pk]
    )


def test_live_count_names_the_path_of_a_bad_value(admin_client):
    rule = {"all": [{"field": "customer.orders.paid_count", "op": "between", "value": [1, ""]}]}
    body = admin_client.post(reverse(COUNT_URL), {"rule": json.dumps(rule)}).json()
    assert [e["path"] for e in body["errors"]] == ["all[0].value"]
    assert "count" not in body


def test_live_count_is_for_staff_with_view_permission(client):
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(user)
    rule = json.dumps({"field": "customer.level", "op": "eq", "value": "gold"})
    assert client.post(reverse(COUNT_URL), {"rule": rule}).status_code == 404
    user.user_permissions.add(Permission.objects.get(codename="view_segment"))
    assert client.post(reverse(COUNT_URL), {"rule": rule}).json() == {"count": 0, "sample": []}
    client.logout()
    assert client.post(reverse(COUNT_URL), {"rule": rule}).status_code == 302


def test_form_shows_the_builder_not_json(admin_client):
    page = admin_client.get(reverse("admin:segments_segment_add")).content.decode()
    assert 'data-builder="condition-tree"' in page
    assert ">null<" not in page
    assert "segments/segment_form.js" in page


def test_static_segment_drops_a_leftover_rule_and_errors_sit_at_their_path(admin_client):
    response = admin_client.post(
        reverse("admin:segments_segment_add"),
        {
            "code": "list",
            "name": "List",
            "description": "",
            "kind": "static",
            "rule": json.dumps({"field": "customer.level", "op": "eq", "value": "gold"}),
        },
    )
    assert response.status_code == 302
    assert Segment.objects.get(code="list").rule is None
    bad = {"all": [{"field": "customer.level", "op": "eq", "value": 5}]}
    response = admin_client.post(
        reverse("admin:segments_segment_add"),
        {
            "code": "bad",
            "name": "Bad",
            "description": "",
            "kind": "dynamic",
            "rule": json.dumps(bad),
        },
    )
    widget = response.context["adminform"].form.fields["rule"].widget
    assert [e["path"] for e in widget.errors] == ["all[0].value"]

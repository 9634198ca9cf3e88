"""Customer sync over the API: cleansing, partial updates, tags, bulk upserts and limits."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from segments.models import Customer, CustomerTag, Tag
from tests.factories import make_api_key
from tests.segments.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/{}/"
BULK = "/api/v1/customers/bulk/"


def test_put_creates_a_cleansed_customer(api):
    response = api.put(
        URL.format("c-1"),
        {
            "name": " Wang Fang ",
            "email": " Wang.Fang@Example.COM ",
            "phone": "138 0013 8000",
            "birthday": "unknown",
            "timezone": "Mars/Olympus_Mons",
            "locale": "zh_CN",
            "level": "gold",
            "email_consent": True,
            "attributes": {"city": "Shanghai"},
            "tags": ["vip", "new-user", "vip"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Wang Fang"
    assert body["email"] == "wang.fang@example.com"
    assert body["phone"] == "+8613800138000"
    assert body["birthday"] is None
    assert body["timezone"] == "Asia/Shanghai"
    assert body["locale"] == "zh-CN"
    assert body["tags"] == ["new-user", "vip"]
    assert body["quality_flags"] == [
        {"field": "birthday", "code": "invalid_date", "value": "unknown"},
        {"field": "timezone", "code": "unknown_timezone", "value": "Mars/Olympus_Mons"},
    ]
    customer = Customer.objects.get(external_id="c-1")
    assert customer.email_consent is True
    assert sorted(customer.tag_set.values_list("code", flat=True)) == ["new-user", "vip"]


@pytest.mark.parametrize(
    ("birthday", "code"),
    [
        ("unknown", "invalid_date"),
        ("1990-13-45", "invalid_date"),
        ("31/12/1990", "invalid_date"),
        ((dt.date.today() + dt.timedelta(days=2)).isoformat(), "future_date"),
        ("1850-01-01", "implausible_date"),
        (19900101, "invalid_date"),
    ],
)
def test_bad_birthdays_become_null_with_a_flag(api, birthday, code):
    response = api.put(URL.format("c-b"), {"birthday": birthday}, format="json")
    assert response.status_code == 201
    customer = Customer.objects.get(external_id="c-b")
    assert customer.birthday is None
    assert customer.quality_flags == [{"field": "birthday", "code": code, "value": birthday}]


def test_bad_email_and_phone_are_blanked_and_flagged(api):
    api.put(URL.format("c-e"), {"email": "not-an-email", "phone": "12"}, format="json")
    customer = Customer.objects.get(external_id="c-e")
    assert (customer.email, customer.phone) == ("", "")
    assert {flag["code"] for flag in customer.quality_flags} == {"invalid_email", "invalid_phone"}


def test_a_partial_update_keeps_other_fields_and_clears_fixed_flags(api):
    api.put(
        URL.format("c-2"),
        {"name": "Li", "birthday": "unknown", "level": "gold", "tags": ["a"]},
        format="json",
    )
    response = api.put(URL.format("c-2"), {"birthday": "1991-02-03"}, format="json")
    assert response.status_code == 200
    customer = Customer.objects.get(external_id="c-2")
    assert (customer.name, customer.level, customer.birthday) == ("Li", "gold", dt.date(1991, 2, 3))
    assert customer.quality_flags == []
    assert customer.tags == ("a",)


def test_tags_are_replaced_not_merged(api):
    api.put(URL.format("c-3"), {"tags": ["a", "b"]}, format="json")
    api.put(URL.format("c-3"), {"tags": ["b", "c"]}, format="json")
    assert Customer.objects.get(external_id="c-3").tags == ("b", "c")
    api.put(URL.format("c-3"), {"tags": []}, format="json")
    assert Customer.objects.get(external_id="c-3").tags == ()


@pytest.mark.parametrize(
    ("body", "path", "code"),
    [
        ({"name": 5}, "name", "invalid_type"),
        ({"name": "x" * 201}, "name", "too_long"),
        ({"email_consent": "maybe"}, "email_consent", "invalid_type"),
        ({"attributes": [1, 2]}, "attributes", "invalid_type"),
        ({"tags": "vip"}, None, None),
        ({"tags": [1]}, "tags", "invalid_type"),
        ({"unsubscribed_at": "yesterday"}, "unsubscribed_at", "invalid_datetime"),
        ({"shoe_size": 42}, "shoe_size", "unknown_field"),
        ({"external_id": "someone-else"}, "external_id", "mismatch"),
    ],
)
def test_bad_fields_are_a_400_naming_the_field_and_store_nothing(api, body, path, code):
    response = api.put(URL.format("c-4"), body, format="json")
    if path is None:  # a comma-separated string is accepted (the CSV form)
        assert response.status_code == 201
        return
    assert response.status_code == 400
    payload = response.json()
    assert payload["code"] == "invalid_customer"
    assert {"path": path, "code": code} in [
        {"path": e["path"], "code": e["code"]} for e in payload["errors"]
    ]
    assert not Customer.objects.filter(external_id="c-4").exists()


def test_a_body_that_is_not_an_object_is_a_400(api):
    response = api.put(URL.format("c-5"), [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_customer"


def test_keys_need_the_customers_scope(db):
    _, raw = make_api_key(scopes=["events"])
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = client.put(URL.format("c-6"), {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert APIClient().put(URL.format("c-6"), {}, format="json").status_code == 401


def bad_row(index: int) -> dict:
    kind = index % 5
    row: dict = {"external_id": f"bulk-{index}"}
    if kind == 0:
        row["email_consent"] = "perhaps"
    elif kind == 1:
        row["name"] = "n" * 300
    elif kind == 2:
        row["attributes"] = "not json"
    elif kind == 3:
        row.pop("external_id")
    else:
        row["tags"] = [1, 2]
    return row


def test_bulk_of_10000_with_500_bad_rows_stores_9500_and_reports_500(api):
    bad_indexes = set(range(7, 10_000, 20))
    assert len(bad_indexes) == 500
    rows = [
        bad_row(index)
        if index in bad_indexes
        else {
            "external_id": f"bulk-{index}",
            "name": f"Customer {index}",
            "level": "gold" if index % 2 else "silver",
            "birthday": "unknown" if index % 1000 == 0 else "1990-01-01",
            "tags": ["bulk", f"group-{index % 3}"],
        }
        for index in range(10_000)
    ]
    response = api.post(BULK, {"customers": rows}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["received"], body["stored"]) == (10_000, 9_500)
    assert [item["index"] for item in body["rejected"]] == sorted(bad_indexes)
    expected_reason = {
        0: ("email_consent", "invalid_type"),
        1: ("name", "too_long"),
        2: ("attributes", "invalid_json"),
        3: ("external_id", "required"),
        4: ("tags", "invalid_type"),
    }
    for item in body["rejected"]:
        error = item["errors"][0]
        assert (error["field"], error["code"]) == expected_reason[item["index"] % 5]
        assert error["message"]
    assert Customer.objects.count() == 9_500
    assert not Customer.objects.filter(
        external_id__in=[f"bulk-{index}" for index in bad_indexes]
    ).exists()
    assert len(body["flagged"]) == 10
    assert Customer.objects.exclude(quality_flags=[]).count() == 10
    assert CustomerTag.objects.filter(tag__code="bulk").count() == 9_500
    assert set(Tag.objects.values_list("code", flat=True)) == {
        "bulk",
        "group-0",
        "group-1",
        "group-2",
    }


def test_bulk_reports_each_bad_row_by_index_field_and_reason(api):
    rows = [
        {"external_id": "ok-1", "name": "A"},
        {"external_id": "bad-1", "email_consent": "perhaps", "shoe_size": 1},
        {"name": "no id"},
        {"external_id": "ok-1", "name": "again"},
        "not an object",
    ]
    body = api.post(BULK, {"customers": rows}, format="json").json()
    assert body["stored"] == 1
    assert body["rejected"] == [
        {
            "index": 1,
            "external_id": "bad-1",
            "errors": [
                {
                    "field": "shoe_size",
                    "code": "unknown_field",
                    "message": "Unknown field 'shoe_size'.",
                },
                {
                    "field": "email_consent",
                    "code": "invalid_type",
                    "message": "email_consent must be true or false.",
                },
            ],
        },
        {
            "index": 2,
            "external_id": None,
            "errors": [
                {"field": "external_id", "code": "required", "message": "external_id is required."}
            ],
        },
        {
            "index": 3,
            "external_id": "ok-1",
            "errors": [
                {
                    "field": "external_id",
                    "code": "duplicate",
                    "message": "The same external_id is also at index 0.",
                }
            ],
        },
        {
            "index": 4,
            "external_id": None,
            "errors": [
                {
                    "field": "",
                    "code": "invalid_type",
                    "message": "Expected an object of customer fields.",
                }
            ],
        },
    ]
    assert Customer.objects.get().name == "A"


def test_bulk_of_10001_rows_is_a_400_and_stores_nothing(api):
    rows = [{"external_id": f"x-{index}"} for index in range(10_001)]
    response = api.post(BULK, {"customers": rows}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_rows"
    assert Customer.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"customers": {"a": 1}}, [1]])
def test_bulk_needs_a_list_of_customers(api, body):
    response = api.post(BULK, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_customer"


def test_bulk_updates_existing_customers_in_place(api):
    existing = CustomerFactory(external_id="old", name="Old", level="silver")
    api.post(BULK, {"customers": [{"external_id": "old", "level": "gold"}]}, format="json")
    existing.refresh_from_db()
    assert (existing.name, existing.level) == ("Old", "gold")
    assert Customer.objects.count() == 1


def test_bulk_writes_in_a_bounded_number_of_queries(api):
    rows = [{"external_id": f"q-{i}", "level": "gold", "tags": ["t"]} for i in range(3000)]
    with CaptureQueriesContext(connection) as queries:
        assert api.post(BULK, {"customers": rows}, format="json").json()["stored"] == 3000
    # auth + flags read + 3 upsert batches + tags (create, read, delete, 1 insert) + savepoints
    assert len(queries) < 20

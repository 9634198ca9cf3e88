"""Segment rules compiled to SQL on PostgreSQL: every operator returns exactly the expected
customers; tags are exact; order aggregates read days in each customer's own timezone."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.rules import RuleError
from segments.models import Customer
from segments.rules import check_rule, compile_rule
from tests.segments.factories import CustomerFactory, OrderFactory, TagFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 16, 30, tzinfo=dt.UTC)


def members(rule, *, now=NOW) -> set[str]:
    return set(
        Customer.objects.filter(compile_rule(check_rule(rule), now=now)).values_list(
            "external_id", flat=True
        )
    )


def paid(customer, at, amount="100.00", state="paid"):
    return OrderFactory(customer=customer, state=state, paid_at=at, amount=Decimal(amount))


@pytest.fixture
def people():
    tag_1, tag_11, vip = TagFactory(code="1"), TagFactory(code="11"), TagFactory(code="vip")
    alice = CustomerFactory(
        external_id="alice",
        name="Alice Wang",
        level="gold",
        email="alice@example.com",
        birthday=dt.date(1990, 5, 1),
        email_consent=True,
        unsubscribed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        attributes={"score": 80, "city": "shanghai", "vip": True, "codes": ["a", "b"]},
    )
    bob = CustomerFactory(
        external_id="bob",
        name="Bob Li",
        level="silver",
        birthday=None,
        attributes={"score": "45", "city": "beijing", "vip": False, "nested": {"x": 5}},
    )
    carol = CustomerFactory(
        external_id="carol",
        name="Carol",
        level="",
        birthday=dt.date(2000, 1, 1),
        attributes={"score": None, "city": "shanghai-pudong", "codes": "abc"},
    )
    dave = CustomerFactory(
        external_id="dave", name="Dave", level="gold", birthday=dt.date(1985, 12, 31)
    )
    alice.tag_set.add(tag_1, vip)
    bob.tag_set.add(tag_11)
    dave.tag_set.add(tag_1, tag_11)
    # Order history, all read in Asia/Shanghai (the default zone), where NOW is 00:30 on
    # 11 March: alice paid twice on 10 March, bob once long ago, carol never (one pending,
    # one refunded), dave once today.
    paid(alice, NOW - dt.timedelta(hours=2), "120.00")
    paid(alice, NOW - dt.timedelta(hours=20), "80.00", state="completed")
    paid(bob, NOW - dt.timedelta(days=40), "300.00", state="shipped")
    OrderFactory(customer=carol)
    paid(carol, NOW - dt.timedelta(hours=1), "999.00", state="refunded")
    paid(dave, NOW - dt.timedelta(minutes=5), "10.50")
    return {"alice": alice, "bob": bob, "carol": carol, "dave": dave}


EVERYONE = {"alice", "bob", "carol", "dave"}

CASES = [
    # profile text
    ({"field": "customer.level", "op": "eq", "value": "gold"}, {"alice", "dave"}),
    ({"field": "customer.level", "op": "ne", "value": "gold"}, {"bob", "carol"}),
    (
        {"field": "customer.level", "op": "in", "value": ["silver", "gold"]},
        {"alice", "bob", "dave"},
    ),
    ({"field": "customer.level", "op": "not_in", "value": ["silver", "gold"]}, {"carol"}),
    ({"field": "customer.name", "op": "contains", "value": "Li"}, {"bob"}),
    ({"field": "customer.level", "op": "exists"}, {"alice", "bob", "dave"}),
    ({"field": "customer.level", "op": "exists", "value": False}, {"carol"}),
    ({"field": "customer.email", "op": "exists"}, {"alice"}),
    # dates and date-times
    ({"field": "customer.birthday", "op": "eq", "value": "1990-05-01"}, {"alice"}),
    ({"field": "customer.birthday", "op": "ne", "value": "1990-05-01"}, {"bob", "carol", "dave"}),
    ({"field": "customer.birthday", "op": "gt", "value": "1990-05-01"}, {"carol"}),
    ({"field": "customer.birthday", "op": "gte", "value": "1990-05-01"}, {"alice", "carol"}),
    ({"field": "customer.birthday", "op": "lt", "value": "1990-05-01"}, {"dave"}),
    ({"field": "customer.birthday", "op": "lte", "value": "1990-05-01"}, {"alice", "dave"}),
    (
        {"field": "customer.birthday", "op": "between", "value": ["1985-12-31", "1990-05-01"]},
        {"alice", "dave"},
    ),
    (
        {"field": "customer.birthday", "op": "in", "value": ["2000-01-01", "1985-12-31"]},
        {"carol", "dave"},
    ),
    (
        {"field": "customer.birthday", "op": "not_in", "value": ["2000-01-01"]},
        {"alice", "bob", "dave"},
    ),
    ({"field": "customer.birthday", "op": "exists", "value": False}, {"bob"}),
    (
        {"field": "customer.unsubscribed_at", "op": "lt", "value": "2026-01-01T08:00:01+08:00"},
        {"alice"},
    ),
    ({"field": "customer.unsubscribed_at", "op": "exists"}, {"alice"}),
    # booleans
    ({"field": "customer.email_consent", "op": "eq", "value": True}, {"alice"}),
    ({"field": "customer.email_consent", "op": "ne", "value": True}, {"bob", "carol", "dave"}),
    # tags: exact identity, never substring
    ({"field": "customer.tags", "op": "contains", "value": "1"}, {"alice", "dave"}),
    ({"field": "customer.tags", "op": "contains", "value": "11"}, {"bob", "dave"}),
    ({"field": "customer.tags", "op": "in", "value": ["vip", "11"]}, {"alice", "bob", "dave"}),
    ({"field": "customer.tags", "op": "not_in", "value": ["1"]}, {"bob", "carol"}),
    ({"field": "customer.tags", "op": "exists"}, {"alice", "bob", "dave"}),
    ({"field": "customer.tags", "op": "exists", "value": False}, {"carol"}),
    # attributes, typed like the chains' comparisons ("45" compares as 45)
    ({"field": "customer.attributes.score", "op": "gte", "value": 45}, {"alice", "bob"}),
    ({"field": "customer.attributes.score", "op": "gt", "value": 45}, {"alice"}),
    ({"field": "customer.attributes.score", "op": "lt", "value": 50}, {"bob"}),
    ({"field": "customer.attributes.score", "op": "lte", "value": 45.0}, {"bob"}),
    ({"field": "customer.attributes.score", "op": "eq", "value": 80}, {"alice"}),
    ({"field": "customer.attributes.score", "op": "ne", "value": 80}, {"bob", "carol", "dave"}),
    ({"field": "customer.attributes.score", "op": "between", "value": [40, 50]}, {"bob"}),
    ({"field": "customer.attributes.score", "op": "in", "value": [45, 46]}, {"bob"}),
    (
        {"field": "customer.attributes.score", "op": "not_in", "value": [80]},
        {"bob", "carol", "dave"},
    ),
    ({"field": "customer.attributes.score", "op": "exists"}, {"alice", "bob"}),
    ({"field": "customer.attributes.city", "op": "eq", "value": "shanghai"}, {"alice"}),
    (
        {"field": "customer.attributes.city", "op": "contains", "value": "shanghai"},
        {"alice", "carol"},
    ),
    ({"field": "customer.attributes.city", "op": "in", "value": ["beijing", "x"]}, {"bob"}),
    ({"field": "customer.attributes.codes", "op": "contains", "value": "a"}, {"alice", "carol"}),
    ({"field": "customer.attributes.vip", "op": "eq", "value": True}, {"alice"}),
    ({"field": "customer.attributes.vip", "op": "ne", "value": True}, {"bob", "carol", "dave"}),
    ({"field": "customer.attributes.nested.x", "op": "eq", "value": 5}, {"bob"}),
    ({"field": "customer.attributes.missing", "op": "exists", "value": False}, EVERYONE),
    # order aggregates (paid, shipped, completed count; pending and refunded do not)
    ({"field": "customer.orders.paid_last_2d", "op": "gte", "value": 2}, {"alice"}),
    ({"field": "customer.orders.paid_last_1d", "op": "eq", "value": 1}, {"dave"}),
    ({"field": "customer.orders.paid_last_1d", "op": "lt", "value": 1}, {"alice", "bob", "carol"}),
    ({"field": "customer.orders.paid_last_2d", "op": "ne", "value": 2}, {"bob", "carol", "dave"}),
    ({"field": "customer.orders.paid_last_90d", "op": "in", "value": [1]}, {"bob", "dave"}),
    ({"field": "customer.orders.paid_last_90d", "op": "not_in", "value": [1]}, {"alice", "carol"}),
    ({"field": "customer.orders.paid_count", "op": "between", "value": [1, 1]}, {"bob", "dave"}),
    ({"field": "customer.orders.paid_count", "op": "lte", "value": 1}, {"bob", "carol", "dave"}),
    ({"field": "customer.orders.paid_count", "op": "gt", "value": 0}, {"alice", "bob", "dave"}),
    ({"field": "customer.orders.total_spent", "op": "gt", "value": 199.99}, {"alice", "bob"}),
    ({"field": "customer.orders.total_spent", "op": "lt", "value": 100}, {"carol", "dave"}),
    ({"field": "customer.orders.total_spent", "op": "eq", "value": 10.5}, {"dave"}),
    ({"field": "customer.orders.days_since_last", "op": "eq", "value": 0}, {"dave"}),
    ({"field": "customer.orders.days_since_last", "op": "eq", "value": 1}, {"alice"}),
    ({"field": "customer.orders.days_since_last", "op": "gte", "value": 30}, {"bob"}),
    ({"field": "customer.orders.days_since_last", "op": "exists", "value": False}, {"carol"}),
    (
        {"field": "customer.orders.days_since_last", "op": "ne", "value": 0},
        {"alice", "bob", "carol"},
    ),
    # groups
    (
        {
            "all": [
                {"field": "customer.tags", "op": "contains", "value": "1"},
                {"field": "customer.orders.paid_last_2d", "op": "gte", "value": 2},
            ]
        },
        {"alice"},
    ),
    (
        {
            "any": [
                {"field": "customer.level", "op": "eq", "value": "silver"},
                {"field": "customer.attributes.vip", "op": "eq", "value": True},
            ]
        },
        {"alice", "bob"},
    ),
    ({"not": {"field": "customer.tags", "op": "contains", "value": "1"}}, {"bob", "carol"}),
    ({"not": {"field": "customer.birthday", "op": "gt", "value": "1990-01-01"}}, {"bob", "dave"}),
]


@pytest.mark.parametrize(("rule", "expected"), CASES, ids=[str(rule) for rule, _ in CASES])
def test_operator_selects_exactly(people, rule, expected):
    assert members(rule) == expected


def test_every_operator_is_covered():
    from core.rules import OPERATORS

    used = {
        op
        for rule, _ in CASES
        for op in [rule.get("op")] + [c.get("op") for c in rule.get("all", rule.get("any", []))]
        if op
    } | {"exists"}
    assert set(OPERATORS) <= used


def test_a_segment_is_one_query(people):
    rule = {
        "all": [
            {"field": "customer.tags", "op": "contains", "value": "1"},
            {"field": "customer.orders.paid_last_2d", "op": "gte", "value": 2},
            {"field": "customer.orders.total_spent", "op": "gt", "value": 10},
            {"field": "customer.attributes.score", "op": "gt", "value": 1},
        ]
    }
    node = check_rule(rule)
    with CaptureQueriesContext(connection) as queries:
        assert members(rule) == {"alice"}
    assert len(queries) == 1
    assert node is not None


def test_customer_tagged_11_is_never_in_a_segment_on_tag_1(db):
    tag_1, tag_11 = TagFactory(code="1"), TagFactory(code="11")
    TagFactory(code="111")
    only_11 = CustomerFactory(external_id="only-11")
    only_11.tag_set.add(tag_11)
    with_1 = CustomerFactory(external_id="with-1")
    with_1.tag_set.add(tag_1)
    assert members({"field": "customer.tags", "op": "contains", "value": "1"}) == {"with-1"}
    assert members({"field": "customer.tags", "op": "in", "value": ["1", "111"]}) == {"with-1"}


class TestTimezoneDayBoundaries:
    """NOW is 2026-03-10 16:30 UTC: already 00:30 on 11 March in Shanghai (UTC+8), still
    12:30 on 10 March in New York (UTC-4, summer time since 8 March)."""

    @pytest.fixture
    def zones(self, db):
        shanghai = CustomerFactory(external_id="shanghai", timezone="Asia/Shanghai")
        new_york = CustomerFactory(external_id="new-york", timezone="America/New_York")
        default = CustomerFactory(external_id="default-zone", timezone="")
        at = dt.datetime(2026, 3, 10, 15, 50, tzinfo=dt.UTC)  # 23:50 in Shanghai, 11:50 in NY
        for customer in (shanghai, new_york, default):
            paid(customer, at)
        return at

    def test_today_starts_at_local_midnight(self, zones):
        # For Shanghai the order was yesterday; for New York it was this morning.
        assert members({"field": "customer.orders.paid_last_1d", "op": "gte", "value": 1}) == {
            "new-york"
        }
        assert members({"field": "customer.orders.paid_last_2d", "op": "gte", "value": 1}) == {
            "shanghai",
            "new-york",
            "default-zone",
        }

    def test_one_minute_after_local_midnight_counts(self, zones):
        after_midnight = CustomerFactory(external_id="after", timezone="Asia/Shanghai")
        paid(after_midnight, dt.datetime(2026, 3, 10, 16, 1, tzinfo=dt.UTC))  # 00:01 local
        assert members({"field": "customer.orders.paid_last_1d", "op": "gte", "value": 1}) == {
            "new-york",
            "after",
        }

    def test_days_since_last_order_are_local_days(self, zones):
        assert members({"field": "customer.orders.days_since_last", "op": "eq", "value": 1}) == {
            "shanghai",
            "default-zone",
        }
        assert members({"field": "customer.orders.days_since_last", "op": "eq", "value": 0}) == {
            "new-york"
        }

    def test_window_edge_n_days_back(self, zones):
        # Five local days in New York: 6 March 00:00 EST (05:00 UTC) onwards.
        new_york = Customer.objects.get(external_id="new-york")
        paid(new_york, dt.datetime(2026, 3, 6, 5, 0, tzinfo=dt.UTC))
        paid(new_york, dt.datetime(2026, 3, 6, 4, 59, tzinfo=dt.UTC))
        assert members({"field": "customer.orders.paid_last_5d", "op": "eq", "value": 2}) == {
            "new-york"
        }


BAD_RULES = [
    ({"field": "customer.shoe_size", "op": "eq", "value": 42}, "field", "unknown_field"),
    ({"field": "event.score", "op": "gte", "value": 1}, "field", "unknown_field"),
    ({"field": "customer.orders.paid_last_0d", "op": "gte", "value": 1}, "field", "unknown_field"),
    ({"field": "customer.orders.bought", "op": "gte", "value": 1}, "field", "unknown_field"),
    ({"field": "customer.attributes.a b", "op": "eq", "value": 1}, "field", "unknown_field"),
    ({"field": "customer.level", "op": "like", "value": "g%"}, "op", "unknown_operator"),
    ({"field": "customer.birthday", "op": "contains", "value": "1990"}, "op", "unknown_operator"),
    ({"field": "customer.tags", "op": "eq", "value": "vip"}, "op", "unknown_operator"),
    ({"field": "customer.level", "op": "eq", "value": 5}, "value", "invalid_value"),
    ({"field": "customer.birthday", "op": "gt", "value": "1990-13-45"}, "value", "invalid_value"),
    (
        {"field": "customer.created_at", "op": "gt", "value": "2026-01-01T00:00"},
        "value",
        "invalid_value",
    ),
    ({"field": "customer.email_consent", "op": "eq", "value": "yes"}, "value", "invalid_value"),
    (
        {"field": "customer.orders.paid_last_2d", "op": "gte", "value": "2"},
        "value",
        "invalid_value",
    ),
    ({"field": "customer.orders.paid_count", "op": "gte", "value": 1.5}, "value", "invalid_value"),
    ({"field": "customer.orders.total_spent", "op": "gt", "value": True}, "value", "invalid_value"),
    ({"field": "customer.tags", "op": "in", "value": ["vip", 3]}, "value", "invalid_value"),
    ({"field": "customer.attributes.x", "op": "in", "value": [1, "a"]}, "value", "invalid_value"),
    ({"field": "customer.attributes.x", "op": "gt", "value": True}, "value", "invalid_value"),
    ({"field": "customer.level", "op": "in", "value": "gold"}, "value", "invalid_value"),
]


@pytest.mark.parametrize(
    ("rule", "where", "code"), BAD_RULES, ids=[str(r) for r, _, _ in BAD_RULES]
)
def test_bad_rules_are_refused_with_their_path(rule, where, code):
    with pytest.raises(RuleError) as caught:
        check_rule({"all": [{"field": "customer.level", "op": "exists"}, rule]})
    assert caught.value.code == code
    assert caught.value.path == f"all[1].{where}"

"""One condition grammar, two back ends: on random trees and random customers, the chains'
Python predicate (core.rules.compile_predicate, reading fields the way a run does) and
the segments' SQL (segments.rules.compile_rule) select exactly the same customers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activities.engine.context import RunContext
from core.rules import MAX_NUMERIC_TEXT_LENGTH, compile_predicate, parse
from segments.models import Customer, Tag
from segments.rules import check_rule, compile_rule
from tests.properties.strategies import ATTRIBUTE_KEYS, TAGS, WORDS, aware, trees

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 16, 30, tzinfo=dt.UTC)

# --- customers ----------------------------------------------------------------------------

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100),
    st.sampled_from([0.5, 45.0, 59.99, 1e3, -0.0]),
    st.sampled_from(
        ["45", "60", " 7 ", "1e2", "abc", "", "4.5", "-3", ".5", "5.", "NaN", "Infinity"]
    ),
    st.sampled_from(["1_000", "٣", "45\n", "0x10", "+5", "1e400"]),
    # Both back ends stop reading text as a number past MAX_NUMERIC_TEXT_LENGTH characters.
    st.sampled_from(["1" * MAX_NUMERIC_TEXT_LENGTH, "1" * (MAX_NUMERIC_TEXT_LENGTH + 1)]),
    st.sampled_from(WORDS),
)
json_value = st.one_of(
    json_scalar,
    st.lists(st.sampled_from([*WORDS, "1", "2"]), max_size=3),
    st.lists(st.integers(0, 3), max_size=3),
    st.fixed_dictionaries({"x": st.integers(0, 9)}),
)
customer_rows = st.fixed_dictionaries(
    {
        "name": st.sampled_from(WORDS),
        "level": st.sampled_from(WORDS),
        "email": st.sampled_from(["", "a@example.com", "gold@example.com"]),
        "birthday": st.one_of(st.none(), st.dates(dt.date(1980, 1, 1), dt.date(2010, 1, 1))),
        "email_consent": st.booleans(),
        "unsubscribed_at": st.one_of(st.none(), aware),
        "attributes": st.dictionaries(st.sampled_from(ATTRIBUTE_KEYS), json_value, max_size=4),
        "tags": st.lists(st.sampled_from(TAGS), unique=True),
    }
)

# --- the property ------------------------------------------------------------------------


def chain_reads(customer: Customer) -> RunContext:
    """A run's context around this customer: `ctx.get` resolves customer fields exactly as a
    chain's rule_check does."""
    ctx = RunContext.__new__(RunContext)
    ctx.customer = customer
    return ctx


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(customer_rows, min_size=1, max_size=6), tree=trees)
def test_python_predicate_and_sql_select_the_same_customers(rows, tree):
    with transaction.atomic():
        tags = {code: Tag.objects.get_or_create(code=code)[0] for code in TAGS}
        ids = []
        for index, row in enumerate(rows):
            fields = {k: v for k, v in row.items() if k != "tags"}
            customer = Customer.objects.create(external_id=f"p-{index}", **fields)
            customer.tag_set.set([tags[code] for code in row["tags"]])
            ids.append(customer.pk)
        predicate = compile_predicate(parse(tree))
        by_python = {
            customer.external_id
            for customer in Customer.objects.filter(pk__in=ids)
            if predicate(chain_reads(customer).get)
        }
        by_sql = set(
            Customer.objects.filter(pk__in=ids)
            .filter(compile_rule(check_rule(tree), now=NOW))
            .values_list("external_id", flat=True)
        )
        transaction.set_rollback(True)
    assert by_python == by_sql, (tree, rows)

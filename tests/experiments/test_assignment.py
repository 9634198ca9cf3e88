"""The pure assignment function: stable, matches the weights, the same in Python and SQL."""

from collections import Counter

import pytest
from django.db import connection
from scipy.stats import chisquare

from activities.engine import assignment


def test_boundaries_split_the_range_exactly_by_weight():
    assert assignment.boundaries([1, 1]) == [2**59, 2**60]
    assert assignment.boundaries([1, 0, 3]) == [2**58, 2**58, 2**60]
    assert assignment.boundaries(["0.5", 0.25, 0.25]) == [2**59, 3 * 2**58, 2**60]
    for bad in ([0, 0], [], [1, -1]):
        with pytest.raises(ValueError):
            assignment.boundaries(bad)


def test_a_zero_weight_variant_gets_nobody_new():
    ends = assignment.boundaries([0, 1])
    assert {assignment.pick(assignment.position("s", i), ends) for i in range(2000)} == {1}


def test_the_same_customer_always_gets_the_same_variant():
    weights = [50, 30, 20]
    first = [assignment.choose("activity:spring:reward", i, weights) for i in range(1000)]
    again = [assignment.choose("activity:spring:reward", i, weights) for i in range(1000)]
    assert first == again
    # Another experiment places the same customers independently.
    other = [assignment.choose("activity:spring:other", i, weights) for i in range(1000)]
    assert first != other


@pytest.mark.parametrize("weights", [[1, 1], [50, 30, 20], [0.1, 0.2, 0.3, 0.4], [1, 0, 9]])
def test_over_100k_customers_the_split_matches_the_weights(weights):
    n = 100_000
    ends = assignment.boundaries(weights)
    counts = Counter(
        assignment.pick(assignment.position("experiment:chi2", i), ends) for i in range(1, n + 1)
    )
    total = sum(weights)
    live = [index for index, weight in enumerate(weights) if weight > 0]
    assert set(counts) == set(live)
    observed = [counts[index] for index in live]
    expected = [n * weights[index] / total for index in live]
    assert chisquare(observed, expected).pvalue > 0.01


def test_the_test_slice_takes_the_share_on_an_independent_hash():
    n = 100_000
    inside = [i for i in range(n) if assignment.in_share("broadcast:7", i, "0.2")]
    assert chisquare([len(inside), n - len(inside)], [0.2 * n, 0.8 * n]).pvalue > 0.01
    # Within the slice the variant split is still even: the two hashes are independent.
    ends = assignment.boundaries([1, 1])
    counts = Counter(assignment.pick(assignment.position("broadcast:7", i), ends) for i in inside)
    assert chisquare([counts[0], counts[1]]).pvalue > 0.01
    assert all(assignment.in_share("broadcast:7", i, 1) for i in range(1000))


@pytest.mark.django_db
def test_postgresql_computes_the_same_position():
    ids = [1, 2, 17, 123_456, 9_876_543_210]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, {assignment.position_sql()} FROM unnest(%s::bigint[]) AS c(id) "
            "ORDER BY c.id",
            ["activity:spring:reward", ids],
        )
        rows = dict(cursor.fetchall())
    assert rows == {i: assignment.position("activity:spring:reward", i) for i in ids}

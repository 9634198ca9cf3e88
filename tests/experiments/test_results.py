"""Results per variant: the statistics against a reference computation on fixed data, the
"not enough data yet" rule at its edges, and the API that serves them."""

import datetime as dt
import math

import pytest
from django.utils import timezone
from scipy.stats import norm

from activities.experiments import stats
from activities.experiments.services import activity_experiment, save_goal
from activities.models import Assignment, Conversion
from segments.models import Customer
from tests.experiments.builders import split_activity
from tests.factories import ChannelFactory, make_api_key

pytestmark = pytest.mark.django_db

Z = norm.ppf(0.975)


def wilson(c: int, n: int) -> tuple[float, float]:
    center = (c + Z**2 / 2) / (n + Z**2)
    half = Z * math.sqrt(c * (n - c) / n + Z**2 / 4) / (n + Z**2)
    return center - half, center + half


def reference(c1: int, n1: int, c2: int, n2: int) -> dict[str, float]:
    """Textbook formulas: pooled two-proportion z-test; Newcomb's interval from Wilson's."""
    p1, p2 = c1 / n1, c2 / n2
    pooled = (c1 + c2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    (l1, u1), (l2, u2) = wilson(c1, n1), wilson(c2, n2)
    d = p1 - p2
    return {
        "uplift": d,
        "p_value": 2 * norm.sf(abs(z)),
        "ci_low": d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        "ci_high": d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    }


@pytest.mark.parametrize(
    ("c1", "n1", "c2", "n2"),
    [(130, 1000, 100, 1000), (12, 400, 30, 420), (5, 100, 95, 100), (2210, 20000, 2050, 19800)],
)
def test_statistics_match_the_reference(c1, n1, c2, n2):
    got = stats.compare(conversions=c1, exposures=n1, control_conversions=c2, control_exposures=n2)
    want = reference(c1, n1, c2, n2)
    assert got is not None
    assert got.uplift == pytest.approx(want["uplift"], abs=1e-12)
    assert got.p_value == pytest.approx(want["p_value"], rel=1e-9)
    assert got.ci_low == pytest.approx(want["ci_low"], rel=1e-9)
    assert got.ci_high == pytest.approx(want["ci_high"], rel=1e-9)
    assert got.relative_uplift == pytest.approx((c1 / n1) / (c2 / n2) - 1)


def test_a_published_example():
    # 130/1000 against 100/1000: pooled z = 2.1027, two-sided p = 0.0355 (as R prop.test
    # without continuity correction: X-squared = 4.4214).
    got = stats.compare(
        conversions=130, exposures=1000, control_conversions=100, control_exposures=1000
    )
    assert round(got.p_value, 4) == 0.0355
    assert got.ci_low > 0


@pytest.mark.parametrize(
    ("conversions", "exposures", "enough"),
    [(5, 100, True), (4, 100, False), (5, 99, False), (95, 100, True), (96, 100, False)],
)
def test_the_not_enough_data_rule_at_its_edges(conversions, exposures, enough):
    assert stats.enough_data(conversions=conversions, exposures=exposures) is enough
    compared = stats.compare(
        conversions=conversions,
        exposures=exposures,
        control_conversions=50,
        control_exposures=500,
    )
    assert (compared is not None) is enough


def seed(experiment, goal, counts: dict[str, tuple[int, int]]) -> None:
    """`counts`: variant -> (exposures, conversions), written in bulk."""
    now = timezone.now()
    for variant, (n, c) in counts.items():
        customers = Customer.objects.bulk_create(
            Customer(external_id=f"{variant}-{i}") for i in range(n)
        )
        Assignment.objects.bulk_create(
            Assignment(experiment=experiment, customer=customer, variant=variant, assigned_at=now)
            for customer in customers
        )
        Conversion.objects.bulk_create(
            Conversion(
                goal=goal,
                experiment=experiment,
                customer=customer,
                variant=variant,
                exposed_at=now,
                converted_at=now + dt.timedelta(hours=1),
            )
            for customer in customers[:c]
        )


def test_the_api_serves_results_per_variant(client):
    ChannelFactory(code="order.paid")
    activity = split_activity(code="ab-api")
    experiment = activity_experiment(activity=activity, key="reward")
    goal = save_goal(
        experiment=experiment, code="paid", channel="order.paid", window=dt.timedelta(days=7)
    )
    seed(experiment, goal, {"control": (1000, 100), "double": (1000, 130)})
    _key, raw = make_api_key(scopes=["events"])
    response = client.get(
        "/api/v1/activities/ab-api/experiment/", HTTP_AUTHORIZATION=f"Api-Key {raw}"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["activity"] == "ab-api"
    assert "100 exposures" in body["rule"]
    [result] = body["experiments"]
    assert (result["key"], result["control"], result["exposures"]) == (
        "reward",
        "control",
        {"control": 1000, "double": 1000},
    )
    [paid] = result["goals"]
    assert (paid["code"], paid["channel"], paid["window_seconds"], paid["enough_data"]) == (
        "paid",
        "order.paid",
        7 * 86400,
        True,
    )
    control, double = paid["variants"]
    assert (control["name"], control["status"], control["rate"], control["p_value"]) == (
        "control",
        "control",
        0.1,
        None,
    )
    want = reference(130, 1000, 100, 1000)
    assert (double["exposures"], double["conversions"], double["rate"], double["status"]) == (
        1000,
        130,
        0.13,
        "compared",
    )
    for field in ("uplift", "p_value", "ci_low", "ci_high"):
        assert double[field] == pytest.approx(want[field], rel=1e-9)
    low, high = wilson(130, 1000)
    assert (double["rate_low"], double["rate_high"]) == (
        pytest.approx(low, rel=1e-9),
        pytest.approx(high, rel=1e-9),
    )


def test_the_api_says_not_enough_data_yet(client):
    ChannelFactory(code="order.paid")
    activity = split_activity(code="ab-small")
    experiment = activity_experiment(activity=activity, key="reward")
    goal = save_goal(
        experiment=experiment, code="paid", channel="order.paid", window=dt.timedelta(days=1)
    )
    seed(experiment, goal, {"control": (120, 10), "double": (99, 20)})
    _key, raw = make_api_key(scopes=["events"])
    body = client.get(
        "/api/v1/activities/ab-small/experiment/", HTTP_AUTHORIZATION=f"Api-Key {raw}"
    ).json()
    [paid] = body["experiments"][0]["goals"]
    double = paid["variants"][1]
    assert paid["enough_data"] is False
    assert (double["status"], double["uplift"], double["p_value"], double["ci_low"]) == (
        "not_enough_data",
        None,
        None,
        None,
    )
    assert double["rate"] == pytest.approx(20 / 99)


def test_the_api_errors(client):
    split_activity(code="ab-none")
    _key, raw = make_api_key(scopes=["events"])
    auth = {"HTTP_AUTHORIZATION": f"Api-Key {raw}"}
    missing = client.get("/api/v1/activities/nope/experiment/", **auth)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    none_yet = client.get("/api/v1/activities/ab-none/experiment/", **auth)
    assert (none_yet.status_code, none_yet.json()["code"]) == (404, "not_found")
    _key, other = make_api_key(scopes=["customers"])
    refused = client.get(
        "/api/v1/activities/ab-none/experiment/", HTTP_AUTHORIZATION=f"Api-Key {other}"
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")

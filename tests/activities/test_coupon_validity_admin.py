"""Fixed coupon validity in the activity page: typed and shown as days in the activity's zone
(the column names it), ending at the local midnight after the last day."""

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse

from activities.engine.cache import coupon_spec
from activities.services import coupon_codes
from tests.e2e.scenario import role_user
from tests.factories import ActivityFactory, BenefitFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@pytest.fixture
def benefit():
    activity = ActivityFactory(name="Winter", timezone="America/New_York")
    return BenefitFactory(activity=activity, code="gift", name="Gift", kind="coupon")


def admin_client() -> Client:
    client = Client()
    client.force_login(role_user(None))
    return client


def post(client, benefit, *, timezone, first="", last=""):
    activity = benefit.activity
    return client.post(
        reverse("admin:activities_activity_change", args=[activity.pk]),
        {
            "name": activity.name,
            "template": activity.template_id,
            "timezone": timezone,
            "on_exhausted": "pause",
            "benefits-TOTAL_FORMS": "1",
            "benefits-INITIAL_FORMS": "1",
            "benefits-MIN_NUM_FORMS": "0",
            "benefits-MAX_NUM_FORMS": "1000",
            "benefits-0-id": benefit.pk,
            "benefits-0-activity": activity.pk,
            "benefits-0-code": "gift",
            "benefits-0-name": "Gift",
            "benefits-0-kind": "coupon",
            "benefits-0-code_source": "generated",
            "benefits-0-code_prefix": "",
            "benefits-0-code_length": "12",
            "benefits-0-valid_from": first,
            "benefits-0-valid_until": last,
        },
    )


def test_days_are_typed_in_the_activity_zone_and_end_at_its_midnight(benefit):
    client = admin_client()
    response = post(
        client, benefit, timezone="America/New_York", first="2026-12-01", last="2026-12-31"
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    benefit.refresh_from_db()
    assert (benefit.valid_from, benefit.valid_until) == (
        dt.datetime(2026, 12, 1, 5, 0, tzinfo=UTC),
        dt.datetime(2027, 1, 1, 5, 0, tzinfo=UTC),
    )
    page = client.get(reverse("admin:activities_activity_change", args=[benefit.activity_id]))
    html = page.content.decode()
    assert "First valid day (America/New_York)" in html
    assert "Last valid day (America/New_York)" in html
    assert re.search(r'name="benefits-0-valid_from" value="2026-12-01"', html)
    assert re.search(r'name="benefits-0-valid_until" value="2026-12-31"', html)
    # A coupon issued on the last day is usable until that local midnight, not the server's.
    _, until = coupon_codes.validity(
        spec=coupon_spec(benefit),
        timezone_name="America/New_York",
        issued_at=dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC),
    )
    assert until == dt.datetime(2027, 1, 1, 5, 0, tzinfo=UTC)


def test_moving_the_activity_to_another_zone_keeps_the_days(benefit):
    client = admin_client()
    post(client, benefit, timezone="America/New_York", first="2026-12-01", last="2026-12-31")
    response = post(
        client, benefit, timezone="Asia/Shanghai", first="2026-12-01", last="2026-12-31"
    )
    assert response.status_code == 302
    benefit.refresh_from_db()
    assert (benefit.valid_from, benefit.valid_until) == (
        dt.datetime(2026, 11, 30, 16, 0, tzinfo=UTC),
        dt.datetime(2026, 12, 31, 16, 0, tzinfo=UTC),
    )


def test_a_last_day_before_the_first_is_refused(benefit):
    response = post(
        admin_client(), benefit, timezone="America/New_York", first="2026-12-10", last="2026-12-01"
    )
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors[0] == {
        "valid_until": ["The last valid day is before the first."]
    }
    benefit.refresh_from_db()
    assert (benefit.valid_from, benefit.valid_until) == (None, None)

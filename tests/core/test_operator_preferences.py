"""Time and language in the admin: the language is the user's own (profile), every date-time
names its zone, no raw JSON for data-quality flags, no "View site" leading to a 404."""

import pytest
from django.test import Client
from django.urls import reverse

from core.models import OperatorProfile
from tests.e2e.scenario import role_user
from tests.segments.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_the_chosen_language_follows_the_user_to_a_new_browser(client):
    user = role_user("Operator", "olivia")
    client.force_login(user)
    client.post(reverse("gambit_set_language"), {"language": "zh-hans", "next": "/admin/"})
    assert OperatorProfile.objects.get(user=user).language == "zh-hans"
    elsewhere = Client()  # no language cookie
    elsewhere.force_login(user)
    page = elsewhere.get(reverse("admin:index"))
    assert '<html lang="zh-hans"' in page.content.decode()
    assert page.cookies["django_language"].value == "zh-hans"


def test_an_unknown_language_is_not_kept(client):
    user = role_user("Operator", "olivia")
    client.force_login(user)
    client.post(reverse("gambit_set_language"), {"language": "xx", "next": "/admin/"})
    assert not OperatorProfile.objects.filter(user=user).exists()


def test_datetimes_name_their_zone_and_flags_read_as_words(client):
    client.force_login(role_user(None))
    customer = CustomerFactory(
        quality_flags=[{"field": "birthday", "code": "invalid_date", "value": "unknown"}]
    )
    page = client.get(reverse("admin:segments_customer_change", args=[customer.pk]))
    body = page.content.decode()
    assert "birthday: invalid birthday (received: unknown)" in body
    assert '"code"' not in body
    listing = client.get(reverse("admin:segments_customer_changelist")).content.decode()
    assert customer.created_at.strftime("%Y-%m-%d %H:%M UTC") in listing


def test_no_view_site_link(client):
    client.force_login(role_user(None))
    assert "View site" not in client.get(reverse("admin:index")).content.decode()

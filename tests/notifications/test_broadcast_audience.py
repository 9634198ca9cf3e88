"""Before a broadcast goes out the operator sees its audience: "Send now" asks first, with the
segment's size and who will be skipped and why; the form shows the size as the segment is
picked."""

import pytest
from django.urls import reverse

from notifications.selectors import audience_preview
from segments.models import Customer
from tests.notifications.factories import BroadcastFactory, make_customers, make_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft():
    ids = make_customers(6)
    Customer.objects.filter(pk=ids[0]).update(email_consent=False)
    Customer.objects.filter(pk=ids[1]).update(email="")
    Customer.objects.filter(pk=ids[2]).update(unsubscribed_at="2026-01-01T00:00:00Z")
    return BroadcastFactory(segment=make_segment(ids, code="six"))


def test_the_preview_counts_members_and_skips_in_one_query(draft, django_assert_num_queries):
    with django_assert_num_queries(2):  # the segment, then one aggregate
        audience = audience_preview(segment_id=draft.segment_id, channel="email")
    assert audience == {
        "members": 6,
        "reachable": 3,
        "skipped": {"unsubscribed": 1, "no_consent": 1, "no_address": 1},
    }


def test_send_now_asks_first_and_shows_the_audience(admin_client, draft):
    change = admin_client.get(reverse("admin:notifications_broadcast_change", args=[draft.pk]))
    url = reverse(
        "admin:notifications_broadcast_transition",
        kwargs={"object_id": draft.pk, "transition_name": "start"},
    )
    assert f'href="{url}"' in change.content.decode()
    page = admin_client.get(url).content.decode()
    assert "6 customers in the segment; 3 can be sent to now." in page
    assert "no consent for this channel: 1" in page
    assert "unsubscribed: 1" in page
    actions = (
        admin_client.get(reverse("admin:notifications_broadcast_changelist"))
        .context["action_form"]
        .fields["action"]
        .choices
    )
    assert not any(name == "start" for name, _label in actions)


def test_the_form_asks_for_the_audience_live(admin_client, draft):
    data = admin_client.get(
        reverse("admin:notifications_broadcast_audience"),
        {"segment": draft.segment_id, "template": draft.template_id},
    ).json()
    assert (data["members"], data["reachable"]) == (6, 3)
    assert data["text"] == "6 customers in the segment; 3 can be sent to now."
    assert admin_client.get(reverse("admin:notifications_broadcast_audience")).json() == {}

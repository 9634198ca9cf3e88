"""Progress for the storefront (`GET /api/v1/broadcasts/{id}/`) and for operators (the admin's
change page, its polling endpoint and its transition buttons)."""

import pytest
from django.urls import reverse

from notifications.models import Broadcast, BroadcastState
from tests.factories import make_api_key
from tests.notifications.factories import BroadcastFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def broadcast():
    made = BroadcastFactory(name="Spring sale")
    Broadcast.objects.filter(pk=made.pk).update(
        state="sending",
        planned=10,
        sent=6,
        failed=1,
        skipped=2,
        skipped_by_reason={"no_consent": 2},
    )
    return Broadcast.objects.get(pk=made.pk)


def test_the_api_returns_progress(api, broadcast):
    response = api.get(f"/api/v1/broadcasts/{broadcast.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Spring sale"
    assert (body["state"], body["channel"], body["kind"]) == ("sending", "email", "one_off")
    assert body["progress"] == {
        "planning_done": False,
        "planned": 10,
        "sent": 6,
        "failed": 1,
        "skipped": 2,
        "skipped_by_reason": {"no_consent": 2},
        "outstanding": 1,
        "errors_since_resume": 0,
        "percent": 90.0,
    }


def test_api_errors_are_json_with_a_code(api, client, broadcast):
    response = api.get("/api/v1/broadcasts/999999/")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert client.get(f"/api/v1/broadcasts/{broadcast.pk}/").status_code == 401
    _, raw = make_api_key(name="events-only", scopes=["events"])
    response = client.get(
        f"/api/v1/broadcasts/{broadcast.pk}/", HTTP_AUTHORIZATION=f"Api-Key {raw}"
    )
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_the_admin_page_polls_its_progress_endpoint(admin_client, broadcast):
    page = admin_client.get(reverse("admin:notifications_broadcast_change", args=[broadcast.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    progress_url = reverse("admin:notifications_broadcast_progress", args=[broadcast.pk])
    assert f'data-progress-url="{progress_url}"' in html
    assert "notifications/progress.js" in html
    assert 'data-action="pause"' in html and 'data-action="cancel"' in html
    assert 'data-action="start"' not in html  # already sending
    progress = admin_client.get(progress_url).json()
    assert (progress["percent"], progress["sent"], progress["state"]) == (90.0, 6, "sending")
    listing = admin_client.get(reverse("admin:notifications_broadcast_changelist"))
    assert 'class="notif-progress-bar" style="width: 90.0%"' in listing.content.decode()


def test_transition_buttons_go_through_the_services(admin_client, broadcast):
    url = reverse(
        "admin:notifications_broadcast_transition",
        kwargs={"object_id": broadcast.pk, "transition_name": "pause"},
    )
    response = admin_client.post(url, {"reason": "copy check", "confirmed": "yes"})
    assert response.status_code == 302
    broadcast.refresh_from_db()
    assert (broadcast.state, broadcast.state_reason) == (BroadcastState.PAUSED, "copy check")
    draft = BroadcastFactory()
    page = admin_client.get(reverse("admin:notifications_broadcast_change", args=[draft.pk]))
    assert 'data-action="start"' in page.content.decode()

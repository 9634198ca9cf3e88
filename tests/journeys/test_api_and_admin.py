"""What the storefront and the operators see of a waiting run."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from activities.models import ChainRun, RunOutcome, WaitingRun, WaitState
from activities.services import journeys
from activities.services.events import process_event
from tests.e2e.scenario import role_user
from tests.journeys.builders import build_unpaid_reminder

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)


def place(api, customer: str, order: str):
    response = api.post(
        reverse("api:event-list"),
        {"channel": "order.placed", "customer": customer, "payload": {"order": order}},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"placed-{order}",
    )
    process_event(event_id=response.json()["id"])
    return response.json()["url"]


def test_the_storefront_sees_waiting_with_when_and_what_then_the_outcome(api, time_machine):
    time_machine.move_to(T0, tick=False)
    build_unpaid_reminder()
    url = place(api, "ann", "o-1")
    run = api.get(url).json()["runs"][0]
    assert {k: run[k] for k in ("outcome", "resumes_at", "awaiting")} == {
        "outcome": "waiting",
        "resumes_at": "2026-12-04T10:30:00Z",
        "awaiting": "order.paid",
    }
    time_machine.move_to(T0 + dt.timedelta(minutes=30), tick=False)
    journeys.resume_due_batch()
    run = api.get(url).json()["runs"][0]
    assert {k: run[k] for k in ("outcome", "resumes_at", "awaiting")} == {
        "outcome": "granted",
        "resumes_at": None,
        "awaiting": None,
    }


def test_the_openapi_schema_documents_the_waiting_fields(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    run = schema["components"]["schemas"]["Run"]["properties"]
    assert (run["resumes_at"]["format"], run["awaiting"]["type"]) == ("date-time", "string")


def test_the_activity_page_counts_customers_per_wait_step_and_an_operator_cancels_one(client, api):
    activity = build_unpaid_reminder()
    place(api, "ann", "o-1")
    place(api, "bob", "o-2")
    client.force_login(role_user(None))
    page = client.get(reverse("admin:activities_activity_change", args=[activity.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "customers waiting now" in html
    link = (
        f"{reverse('admin:activities_waitingrun_changelist')}?activity__id__exact={activity.pk}"
        "&amp;step=1&amp;state__exact=waiting"
    )
    assert f'<a href="{link}">2</a>' in html
    listing = client.get(link.replace("&amp;", "&"))
    assert listing.status_code == 200
    ann = ChainRun.objects.get(customer__external_id="ann")
    response = client.post(
        reverse("admin:activities_waitingrun_changelist"),
        {"action": "cancel", "_selected_action": [ann.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert dict(WaitingRun.objects.values_list("customer__external_id", "state")) == {
        "ann": WaitState.CANCELLED,
        "bob": WaitState.WAITING,
    }
    ann.refresh_from_db()
    assert (ann.outcome, ann.reason) == (RunOutcome.CANCELLED, "cancelled_by_operator")
    page = client.get(reverse("admin:activities_activity_change", args=[activity.pk]))
    assert f'<a href="{link}">1</a>' in page.content.decode()


def test_the_customers_progress_lists_the_runs_waiting_now(api, time_machine):
    time_machine.move_to(T0, tick=False)
    build_unpaid_reminder()
    place(api, "ann", "o-1")
    progress = api.get("/api/v1/customers/ann/activities/unpaid/").json()
    assert progress["waiting"] == [
        {
            "run": ChainRun.objects.get().pk,
            "chain": "order.placed",
            "step": 2,
            "resumes_at": "2026-12-04T10:30:00Z",
            "awaiting": "order.paid",
        }
    ]
    assert api.get("/api/v1/customers/bob/activities/unpaid/").json()["waiting"] == []

"""The dashboard's figures are what the engine did: a run the daily limit rejected is counted as
stopped by the limit, not as passed; an activity's figures per day in its own zone."""

import pytest
from django.urls import reverse
from django.utils import timezone

from activities import selectors_dashboard
from activities.models import Activity, ActivityState, ChainRun, Grant, RunOutcome
from activities.services.events import process_event, record_system_event
from tests.e2e.scenario import activity_on, quiz_template, role_user
from tests.segments.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def busy_quiz() -> Activity:
    """15 quiz events: one customer 14 times (1 granted, 13 over the daily limit), another
    once (granted), and one low score (rejected by the rule)."""
    activity = activity_on(quiz_template(), starts_at=timezone.now() - timezone.timedelta(days=1))
    Activity.objects.filter(pk=activity.pk).update(state=ActivityState.RUNNING)
    keen, other, weak = CustomerFactory(), CustomerFactory(), CustomerFactory()
    fired = [(keen, 80)] * 13 + [(other, 90), (weak, 10)]
    for index, (customer, score) in enumerate(fired):
        event = record_system_event(
            channel_code="quiz.completed",
            customer=customer,
            payload={"score": score},
            idempotency_key=f"quiz-{index}",
        )
        process_event(event_id=event.pk)
    return activity


def test_the_funnel_counts_where_each_run_stopped():
    activity = busy_quiz()
    runs = ChainRun.objects.filter(activity=activity)
    assert runs.count() == 15
    assert runs.filter(outcome=RunOutcome.GRANTED).count() == 2
    [row] = selectors_dashboard.activity_funnel()
    assert (row.events, row.passed_rules, row.passed_limits, row.granted) == (15, 14, 2, 2)
    assert row.rejected == 13


def test_activity_figures_match_the_database():
    activity = busy_quiz()
    stats = selectors_dashboard.activity_stats(activity_id=activity.pk)
    assert stats["timezone"] == "Asia/Shanghai"
    assert stats["funnel"]["events"] == 15
    assert stats["participants"] == 3
    assert stats["events_per_day"][-1]["count"] == 15
    assert stats["participants_per_day"][-1]["count"] == 3
    assert stats["grants_per_day"][-1]["count"] == Grant.objects.filter(activity=activity).count()
    assert stats["grants_by_benefit"] == [
        {"code": "chance", "name": "chance", "grants": 2, "units": 2}
    ]
    assert stats["rejections"] == [
        {"reason": "day_limit_reached", "count": 12},
        {"reason": "rule_not_met", "count": 1},
    ]
    assert stats["stock"] == [
        {"code": "chance", "name": "chance", "total": None, "remaining": None}
    ]


def test_figures_page_shows_reasons_in_words(client):
    activity = busy_quiz()
    client.force_login(role_user("Viewer", "vera"))
    response = client.get(reverse("admin:activities_activity_figures", args=[activity.pk]))
    assert response.status_code == 200
    labels = [row["label"] for row in response.context["figures"]["rejections"]]
    assert labels == ["Daily limit reached", "The rule was not met"]
    body = response.content.decode()
    assert "gambit/vendor/chart.umd.min.js" in body
    assert 'data-figure="participants">3<' in body

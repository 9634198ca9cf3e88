"""The experiments admin: create a broadcast A/B test with its variants and goal, an activity
experiment by split key, results with a chart, and picking the winner through its button."""

import datetime as dt

import pytest
from django.urls import reverse

from activities.experiments import broadcasts
from activities.experiments.services import activity_experiment, save_goal
from activities.models import Experiment, ExperimentState
from tests.e2e.scenario import role_user
from tests.experiments.builders import split_activity
from tests.experiments.test_results import seed
from tests.factories import ChannelFactory
from tests.notifications.factories import NotificationTemplateFactory, make_customers, make_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(role_user(None))
    return client


def management(prefix: str, total: int) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def test_create_a_broadcast_ab_test_with_variants_and_a_goal(operator):
    channel = ChannelFactory(code="order.paid")
    segment = make_segment(make_customers(10), code="all")
    a, b = NotificationTemplateFactory(), NotificationTemplateFactory()
    data = {
        "kind": "broadcast",
        "name": "Spring A/B",
        "segment": segment.pk,
        "test_share": "0.2",
        "decide_after": "04:00:00",
        "auto_pick": "on",
        **management("goals", 1),
        "goals-0-code": "paid",
        "goals-0-channel": channel.pk,
        "goals-0-window": "1 00:00:00",
        "goals-0-condition": "null",
        "goals-0-position": "0",
        **management("variants", 2),
        "variants-0-name": "a",
        "variants-0-template": a.pk,
        "variants-0-weight": "1",
        "variants-0-position": "0",
        "variants-1-name": "b",
        "variants-1-template": b.pk,
        "variants-1-weight": "3",
        "variants-1-position": "1",
    }
    response = operator.post(reverse("admin:activities_experiment_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment = Experiment.objects.get(name="Spring A/B")
    assert (experiment.kind, experiment.state, experiment.salt) == (
        "broadcast",
        ExperimentState.DRAFT,
        f"broadcast:{experiment.pk}",
    )
    assert list(experiment.variants.values_list("name", "weight")) == [("a", 1), ("b", 3)]
    assert list(experiment.goals.values_list("code", "window")) == [("paid", dt.timedelta(days=1))]

    # Start, then pick the winner through the buttons.
    change = reverse("admin:activities_experiment_change", args=[experiment.pk])
    start = reverse(
        "admin:activities_experiment_transition",
        kwargs={"object_id": experiment.pk, "transition_name": "start"},
    )
    assert operator.post(start, {"confirmed": "yes"}).status_code == 302
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.TESTING
    broadcasts.launch_test(experiment_id=experiment.pk)
    decide = reverse(
        "admin:activities_experiment_transition",
        kwargs={"object_id": experiment.pk, "transition_name": "decide"},
    )
    assert operator.post(decide, {"confirmed": "yes", "winner": "b"}).status_code == 302
    experiment.refresh_from_db()
    assert (experiment.state, experiment.winner, experiment.decided_by.username) == (
        ExperimentState.DECIDED,
        "b",
        "admin",
    )
    assert operator.get(change).status_code == 200


def test_a_broadcast_test_needs_two_variants(operator):
    segment = make_segment([], code="none")
    data = {
        "kind": "broadcast",
        "name": "Lonely",
        "segment": segment.pk,
        "test_share": "0.5",
        "decide_after": "01:00:00",
        **management("goals", 0),
        **management("variants", 1),
        "variants-0-name": "a",
        "variants-0-template": NotificationTemplateFactory().pk,
        "variants-0-weight": "1",
        "variants-0-position": "0",
    }
    response = operator.post(reverse("admin:activities_experiment_add"), data, follow=True)
    assert "An A/B test needs at least two variants." in response.content.decode()
    assert not Experiment.objects.exists()


def test_an_activity_experiment_by_split_key_and_its_results(operator):
    ChannelFactory(code="order.paid")
    activity = split_activity(code="ab-admin")
    data = {
        "kind": "activity",
        "name": "Reward test",
        "activity": activity.pk,
        "key": "nope",
        **management("goals", 0),
        **management("variants", 0),
    }
    refused = operator.post(reverse("admin:activities_experiment_add"), data)
    assert refused.status_code == 200
    assert "Use one of the split keys of this activity: reward." in refused.content.decode()
    data["key"] = "reward"
    assert operator.post(reverse("admin:activities_experiment_add"), data).status_code == 302
    experiment = Experiment.objects.get()
    assert experiment == activity_experiment(activity=activity, key="reward")
    goal = save_goal(
        experiment=experiment, code="paid", channel="order.paid", window=dt.timedelta(days=1)
    )
    seed(experiment, goal, {"control": (150, 15), "double": (80, 20)})
    page = operator.get(reverse("admin:activities_experiment_change", args=[experiment.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert 'class="gambit-experiment-chart"' in body
    assert "not enough data yet" in body
    assert "10.00%" in body and "25.00%" in body

"""The operator's path: gallery, one form per gameplay (errors on their fields, in the
operator's language), saved as template + chains, and a dry-run from a given state."""

import pytest
from django import forms
from django.urls import reverse
from django.utils import translation

from activities.definitions.gameplays import all_gameplays, get
from activities.models import Activity, Chain, StrategyTemplate
from tests.e2e.scenario import role_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(role_user(None))
    return client


def streak_form(**overrides):
    data = {
        "code": "week-streak",
        "name": "A week of check-ins",
        "timezone": "Asia/Shanghai",
        "starts_at": "2026-12-01T00:00",
        "ends_at": "2026-12-31T23:59",
        "segment": "",
        "benefits-TOTAL_FORMS": "3",
        "benefits-INITIAL_FORMS": "0",
        "benefits-MIN_NUM_FORMS": "0",
        "benefits-MAX_NUM_FORMS": "1000",
        "benefits-0-code": "points",
        "benefits-0-kind": "points",
        "benefits-0-name": "Points",
        "benefits-1-code": "coupon-7",
        "benefits-1-kind": "coupon",
        "benefits-1-value": "5.00",
        "benefits-2-code": "",
        "benefits-2-kind": "points",
        "param_cycle_days": "7",
        "param_repeat": "on",
        "param_milestones__0__day": "3",
        "param_milestones__0__benefit": "points",
        "param_milestones__0__quantity": "10",
        "param_milestones__1__day": "7",
        "param_milestones__1__benefit": "coupon-7",
        "param_milestones__1__quantity": "1",
        "param_make_up_cost": "",
    }
    data.update(overrides)
    return data


URL = "/admin/activities/activity/gameplays/checkin-streak/"


def test_new_activity_starts_from_the_gallery(operator):
    response = operator.get(reverse("admin:activities_activity_add"), follow=True)
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("admin:activities_activity_gameplays")
    for code in ("checkin-streak", "quiz-lottery", "tasks"):
        assert f'data-gameplay="{code}"' in body
    assert "Check in every day: day 3 earns points, day 7 a coupon." in body
    expert = operator.get(reverse("admin:activities_activity_add") + "?expert=1")
    assert expert.status_code == 200


def test_the_form_offers_the_activitys_benefits_and_the_defaults(operator):
    body = operator.get(URL).content.decode()
    assert 'name="param_cycle_days" value="7"' in body
    select = body[body.index('name="param_milestones__1__benefit"') :]
    select = select[: select.index("</select>")]
    assert '<option value="coupon-7" selected>' in select
    assert '<option value="points">' in select


def test_saving_creates_template_chains_and_steps(operator):
    response = operator.post(URL, streak_form())
    assert response.status_code == 302, response.context["formset"].errors
    activity = Activity.objects.get(code="week-streak")
    assert response["Location"] == reverse("admin:activities_activity_change", args=[activity.pk])
    template = activity.template
    assert (template.code, template.gameplay) == ("week-streak", "checkin-streak")
    assert template.gameplay_parameters["milestones"] == [
        {"day": 3, "benefit": "points", "quantity": 10},
        {"day": 7, "benefit": "coupon-7", "quantity": 1},
    ]
    chain = Chain.objects.get(template=template)
    assert list(chain.steps.values_list("processor", flat=True)) == [
        "checkin_streak",
        "grant_benefit",
        "grant_benefit",
        "build_result",
    ]
    assert sorted(activity.benefits.values_list("code", flat=True)) == ["coupon-7", "points"]


def test_a_gameplay_that_cannot_work_is_refused_on_its_field_in_chinese(operator):
    with translation.override("zh-hans"):
        response = operator.post(
            URL, streak_form(param_cycle_days="5"), HTTP_ACCEPT_LANGUAGE="zh-hans"
        )
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == ["param_milestones__1__day"]
    assert not Activity.objects.exists() and not StrategyTemplate.objects.exists()


def test_field_errors_land_on_their_fields(operator):
    response = operator.post(
        URL,
        streak_form(**{"param_milestones__0__benefit": "", "param_cycle_days": "1", "code": "A"}),
    )
    form = response.context["form"]
    assert set(form.errors) == {"code", "param_cycle_days"}
    response = operator.post(URL, streak_form(**{"benefits-1-code": "other"}))
    form = response.context["form"]
    assert form.errors["param_milestones__1__benefit"]
    assert not Activity.objects.exists()


def test_dry_run_from_a_six_day_streak_reaches_the_seventh_day_reward(operator):
    operator.post(URL, streak_form())
    activity = Activity.objects.get(code="week-streak")
    url = reverse("admin:activities_activity_dry_run", args=[activity.pk])
    page = operator.get(url).content.decode()
    assert 'name="param_streak_days"' in page
    channel = Chain.objects.get(template=activity.template).channel
    response = operator.post(
        url, {"channel": channel.pk, "customer": "alice", "payload": "{}", "param_streak_days": 6}
    )
    outcome = response.context["outcome"]
    assert (outcome.outcome, outcome.result["streak"]) == ("granted", 7)
    assert [grant["benefit"] for grant in outcome.grants] == ["coupon-7"]
    fresh = operator.post(url, {"channel": channel.pk, "customer": "alice", "payload": "{}"})
    assert fresh.context["outcome"].result["streak"] == 1
    assert not activity.streaks.exists()


def form_defaults(response, **overrides):
    """What the browser would post for the page as shown, with `overrides`."""
    data = {}
    for bound in [*response.context["form"], *response.context["formset"].management_form]:
        value = bound.value()
        if isinstance(bound.field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
            continue
        data[bound.html_name] = "" if value is None else str(value)
    for row in response.context["formset"]:
        for bound in row:
            value = bound.value()
            data[bound.html_name] = "" if value is None else str(value)
    data.update(overrides)
    return data


@pytest.mark.parametrize("gameplay", [g.code for g in all_gameplays()])
def test_every_gameplay_saves_from_its_defaults(operator, gameplay):
    url = reverse("admin:activities_activity_gameplay_add", args=[gameplay])
    page = operator.get(url)
    response = operator.post(
        url,
        form_defaults(
            page,
            code=f"{gameplay}-x",
            name="X",
            starts_at="2026-12-01T00:00",
            ends_at="2026-12-31T23:59",
        ),
    )
    assert response.status_code == 302, (
        response.context["form"].errors,
        response.context["formset"].errors,
    )
    activity = Activity.objects.get(code=f"{gameplay}-x")
    assert activity.template.gameplay_parameters == get(gameplay).defaults()


def test_tasks_typed_condition_values_become_numbers(operator):
    url = reverse("admin:activities_activity_gameplay_add", args=["tasks"])
    data = form_defaults(
        operator.get(url),
        code="tasks-x",
        name="X",
        param_tasks__2__value="99.5",
        param_tasks__0__field="event.kind",
        param_tasks__0__op="eq",
        param_tasks__0__value="shoe",
    )
    assert operator.post(url, data).status_code == 302
    tasks = Activity.objects.get(code="tasks-x").template.gameplay_parameters["tasks"]
    assert [(t["field"], t["op"], t["value"]) for t in tasks] == [
        ("event.kind", "eq", "shoe"),
        (None, None, None),
        ("event.amount", "gte", 99.5),
    ]

"""The operator's day in a real browser: create an activity from a template, build its chain,
dry-run it, submit it; a second user approves and schedules it."""

import datetime as dt

import pytest
from django.utils import timezone

from activities.models import Activity, ActivityState, Chain
from activities.services import approvals as approval
from tests.e2e.scenario import login, quiz_template, role_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def drag(page, source: str, target: str) -> None:
    """Drag with real mouse moves (SortableJS follows the pointer, not a synthetic drop)."""
    start = page.locator(source).bounding_box()
    end = page.locator(target).bounding_box()
    page.mouse.move(start["x"] + 40, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + 40, start["y"] - 10, steps=5)
    page.mouse.move(end["x"] + 40, end["y"] + 2, steps=25)
    page.mouse.up()


def test_create_build_dry_run_submit_approve_schedule(new_page, shot):
    template = quiz_template()
    chain = Chain.objects.get(template=template)
    role_user("Operator", "olivia")
    role_user("Approver", "arthur")
    start = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=2)

    page = new_page("en")
    login(page, "olivia")
    shot(page, "01-dashboard")

    # Create an activity from the template, with its benefit.
    page.goto(f"/admin/activities/strategytemplate/{template.pk}/change/")
    page.click("a.gambit-new-activity")
    assert page.locator("#id_template").input_value() == str(template.pk)
    page.fill("#id_code", "spring-quiz")
    page.fill("#id_name", "Spring quiz")
    page.fill("#id_starts_at_0", start.strftime("%Y-%m-%d"))
    page.fill("#id_starts_at_1", "10:00:00")
    page.fill("#id_ends_at_0", (start + dt.timedelta(days=20)).strftime("%Y-%m-%d"))
    page.fill("#id_ends_at_1", "22:00:00")
    page.click("#benefits-group .add-row a")
    page.fill("#id_benefits-0-code", "chance")
    page.select_option("#id_benefits-0-kind", "chance")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    activity = Activity.objects.get(code="spring-quiz")
    assert list(activity.benefits.values_list("code", flat=True)) == ["chance"]
    shot(page, "02-activity-created")

    # Build the chain: lower the pass mark in the condition tree, add a step from the palette,
    # configure it in its generated form, drag it before the result step.
    page.goto(f"/admin/activities/chain/{chain.pk}/change/")
    score = page.locator("#steps-0 .gambit-condition .gambit-value")
    score.fill("50")
    page.click(".gambit-chip[data-processor=query_assets]")
    page.wait_for_selector("#steps-4 .gambit-array")
    page.click("#steps-4 .gambit-array .gambit-add")
    page.fill("#steps-4 .gambit-array input[type=text]", "chance")
    drag(page, "#steps-4 h3", "#steps-3 h3")
    shot(page, "03-chain-builder")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    steps = list(chain.steps.order_by("position").values_list("processor", "config"))
    assert [processor for processor, _ in steps] == [
        "rule_check",
        "participation_limit",
        "grant_benefit",
        "query_assets",
        "build_result",
    ]
    assert steps[0][1] == {"all": [{"field": "event.score", "op": "gte", "value": 50}]}
    assert steps[3][1] == {"benefits": ["chance"]}

    # Dry-run: a customer scoring 55 passes the new pass mark and would get a chance.
    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    page.click("[data-action=dry_run]")
    page.select_option("#id_channel", label="quiz.completed")
    page.fill("#id_customer", "first-timer")
    page.fill("#id_payload", '{"score": 55}')
    page.click("[data-action=dry-run]")
    page.wait_for_selector("#dry-run-result")
    assert page.locator("[data-outcome]").get_attribute("data-outcome") == "granted"
    assert page.locator(".gambit-trace .gambit-outcome-passed").count() == 5
    assert page.locator(".gambit-grants td").first.inner_text() == "chance"
    shot(page, "04-dry-run")
    assert not activity.runs.exists()

    # Submit for approval.
    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    page.click("[data-action=submit]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("[data-action=approve]").count() == 0  # an operator cannot approve
    shot(page, "05-submitted")

    # A second user approves, then schedules.
    approver_page = new_page("en")
    login(approver_page, "arthur")
    approver_page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    assert approver_page.locator("[data-action=schedule]").count() == 0  # not approved yet
    approver_page.click("[data-action=approve]")
    approver_page.wait_for_selector(".messagelist .success")
    assert approval.approval_status(activity).status == "approved"
    approver_page.click("[data-action=schedule]")
    approver_page.wait_for_selector(".messagelist .success")
    activity.refresh_from_db()
    assert activity.state == ActivityState.SCHEDULED
    assert "scheduled" in approver_page.locator(".field-state").inner_text()
    shot(approver_page, "06-scheduled")

"""An operator builds the unpaid-order reminder in the chain builder (wait for the order's
payment, then a reminder and a coupon when it timed out), and watches the activity's page
count the customers waiting at the wait step, before and after cancelling one's wait."""

import datetime as dt

import pytest
from django.utils import timezone

from activities.models import (
    Activity,
    ActivityState,
    Chain,
    ChainRun,
    StrategyTemplate,
    WaitingRun,
    WaitState,
)
from activities.services import configuration
from activities.services.events import process_event
from tests.e2e.scenario import activity_on, login, role_user
from tests.journeys.builders import fire
from tests.notifications.factories import NotificationTemplateFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def when_timed_out(page, step: str) -> None:
    """The step's `only when`: the last wait timed out, set in the condition builder."""
    page.click(f"{step} .gambit-add-condition")
    row = page.locator(f"{step} .gambit-condition").first
    option = row.locator(".gambit-field-pick option[data-name='wait.outcome']")
    row.locator(".gambit-field-pick").select_option(option.get_attribute("value"))
    row.locator(".gambit-op").select_option("eq")
    value = row.locator(".gambit-value").first
    if value.evaluate("node => node.tagName") == "SELECT":
        value.select_option("timeout")
    else:
        value.fill("timeout")


def test_an_operator_builds_the_unpaid_order_reminder_and_sees_who_waits(new_page, shot):
    configuration.ensure_channel(code="order.paid")
    template = StrategyTemplate.objects.create(code="unpaid", name="Unpaid order reminder")
    chain = configuration.save_chain(template=template, channel="order.placed")
    activity = activity_on(
        template, code="unpaid-reminder", starts_at=timezone.now() - dt.timedelta(hours=1)
    )
    configuration.save_benefit(activity=activity, code="pay-now", kind="coupon")
    NotificationTemplateFactory(code="pay-reminder", name="Pay your order")
    role_user("Operator", "olivia")
    page = new_page("en")
    login(page, "olivia")

    page.goto(f"/admin/activities/chain/{chain.pk}/change/")
    page.click(".gambit-chip[data-processor=wait_for_event]")
    page.wait_for_selector("#steps-0 [data-path=channel]")
    page.fill("#steps-0 [data-path=channel]", "order.paid")
    page.fill("#steps-0 [data-path=timeout]", "30m")
    page.click("#steps-0 .gambit-array .gambit-add")
    page.fill("#steps-0 .gambit-array input[type=text]", "order")
    # The reminder: its frequency cap and quiet hours are left empty, so none is sent.
    page.click(".gambit-chip[data-processor=notify]")
    page.wait_for_selector("#steps-1 [data-path=template]")
    page.fill("#steps-1 [data-path=template]", "pay-reminder")
    when_timed_out(page, "#steps-1")
    page.click(".gambit-chip[data-processor=grant_benefit]")
    page.wait_for_selector("#steps-2 [data-path=benefit]")
    page.fill("#steps-2 [data-path=benefit]", "pay-now")
    when_timed_out(page, "#steps-2")
    shot(page, "journey-01-builder")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success, .errornote")
    assert " | ".join(page.locator(".errornote, .errorlist").all_inner_texts()) == ""
    steps = list(
        Chain.objects.get(pk=chain.pk)
        .steps.order_by("position")
        .values_list("processor", "config", "when")
    )
    timed_out = {"field": "wait.outcome", "op": "eq", "value": "timeout"}
    assert [
        (p, c.get("channel") or c.get("template") or c.get("benefit"), w) for p, c, w in steps
    ] == [
        ("wait_for_event", "order.paid", None),
        ("notify", "pay-reminder", {"all": [timed_out]}),
        ("grant_benefit", "pay-now", {"all": [timed_out]}),
    ]
    assert steps[1][1] == {"template": "pay-reminder"}
    assert steps[0][1] == {"channel": "order.paid", "timeout": "30m", "same": ["order"]}

    # Launched (approval is another test's story), two customers leave orders unpaid.
    Activity.objects.filter(pk=activity.pk).update(state=ActivityState.RUNNING)
    for customer in ("ann", "bob"):
        event = fire("order.placed", customer, {"order": f"o-{customer}"}, f"placed-{customer}")
        process_event(event_id=event.pk)
    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    count = page.locator(".gambit-waiting td a").first
    assert count.inner_text() == "2"
    shot(page, "journey-02-two-waiting")

    # An approver (who may pause and end activities) cancels Ann's wait from the waiting
    # runs the count links to; operators only look.
    role_user("Approver", "arthur")
    page = new_page("en")
    login(page, "arthur")
    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    page.locator(".gambit-waiting td a").first.click()
    page.wait_for_selector("#result_list")
    ann = ChainRun.objects.get(customer__external_id="ann")
    page.check(f"input[name=_selected_action][value='{ann.pk}']")
    page.select_option("select[name=action]", "cancel")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    assert WaitingRun.objects.get(pk=ann.pk).state == WaitState.CANCELLED
    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    assert page.locator(".gambit-waiting td a").first.inner_text() == "1"
    shot(page, "journey-03-one-waiting")

"""An operator creates a check-in streak from the gameplay gallery's form (in Chinese and in
English), is refused on the field for a milestone past the streak, dry-runs from a 6-day
streak, and an approver launches it; the storefront then checks in over REST, the seventh day
of a streak earning the coupon (the other gameplays: test_gameplay_gallery.py)."""

import datetime as dt

import pytest
from django.utils import timezone

from activities.definitions.gameplays import get
from activities.models import Activity, ActivityState
from segments.models import Customer
from tests.e2e.scenario import login, role_user
from tests.e2e.storefront import open_storefront

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_checkin_streak_from_the_gallery_to_its_reward(live_server, new_page, shot, language):
    role_user("Operator", "olivia")
    role_user("Approver", "arthur")
    now = timezone.now().astimezone(SHANGHAI)
    page = new_page(language)
    login(page, "olivia")

    page.goto("/admin/activities/activity/add/")
    page.wait_for_selector("[data-gameplay=checkin-streak]")
    assert page.locator(".gambit-gameplay").count() >= 3
    shot(page, "01-gallery")
    page.click("[data-gameplay=checkin-streak] h2 a")

    page.fill("#id_code", "week-streak")
    page.fill("#id_name", "A week of check-ins")
    page.fill("#id_starts_at", (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_ends_at", (now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"))
    assert page.locator("#id_param_milestones__1__benefit").input_value() == "coupon-7"
    page.fill("#id_param_cycle_days", "5")
    shot(page, "02-form")
    page.click("input[name=_save]")
    error = page.locator("td .errorlist").first
    error.wait_for()
    if language == "en":
        assert error.inner_text() == "Day 7 is past the streak length (5 days)."
    assert not Activity.objects.exists()
    shot(page, "03-refused-on-the-field")

    page.fill("#id_param_cycle_days", "7")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    activity = Activity.objects.get(code="week-streak")
    assert activity.template.gameplay == "checkin-streak"
    shot(page, "04-created")

    page.click("[data-action=dry_run]")
    page.select_option("#id_channel", label="checkin.done")
    page.fill("#id_customer", "alice")
    page.fill("#id_param_streak_days", "6")
    page.click("[data-action=dry-run]")
    page.wait_for_selector("#dry-run-result")
    assert page.locator("[data-outcome]").get_attribute("data-outcome") == "granted"
    assert page.locator(".gambit-grants td").first.inner_text() == "coupon-7"
    shot(page, "05-dry-run-from-a-6-day-streak")
    assert not activity.streaks.exists()

    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    page.click("[data-action=submit]")
    page.wait_for_selector(".messagelist .success")
    approver = new_page(language)
    login(approver, "arthur")
    approver.goto(f"/admin/activities/activity/{activity.pk}/change/")
    approver.click("[data-action=approve]")
    approver.wait_for_selector(".messagelist .success")
    approver.click("[data-action=schedule]")
    approver.wait_for_selector(".messagelist .success")
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    shot(approver, "06-launched")

    # Over REST: a first check-in, then one that makes a 6-day streak (as the dry run had it)
    # seven days long; a second check-in the same day counts nothing.
    with open_storefront(live_server.url) as storefront:
        assert storefront.fire("checkin.done", "bob")["grants"] == []
        alice = Customer.objects.create(external_id="alice")
        get("checkin-streak").start_state(
            activity=activity, customer=alice, state={"streak_days": 6}, now=timezone.now()
        )
        seventh = storefront.fire("checkin.done", "alice")
        assert [grant["benefit"] for grant in seventh["grants"]] == ["coupon-7"]
        assert storefront.fire("checkin.done", "alice")["reason"] == "already_checked_in"
        assert storefront.grants("alice") == [("coupon-7", 1)]
        assert storefront.coupons("alice") == [("coupon-7", "5.00")]

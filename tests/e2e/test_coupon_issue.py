"""An operator issues coupons to a segment from the admin in a browser: requests it, sees what it
takes; an approver approves it; the live progress reaches "completed".

The test plays the worker's part in-process (the pages of the issue) while the page polls.
"""

import pytest

from activities.models import BenefitIssue, Grant, IssueState
from activities.services import approvals, coupon_issue
from tests.e2e.scenario import login, role_user
from tests.factories import ActivityFactory, BenefitFactory
from tests.notifications.factories import make_customers, make_segment

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_operator_issues_coupons_to_a_segment(new_page, shot):
    activity = ActivityFactory(running=True, name="Spring sale")
    benefit = BenefitFactory(
        activity=activity, code="gift", name="Gift 10", kind="coupon", stock_total=4
    )
    approvals.record_approval(activity=activity, bypass="test")
    ids = make_customers(6)
    segment = make_segment(ids, code="vip")
    role_user("Operator", "olga")
    role_user("Approver", "abe")

    page = new_page("en")
    login(page, "olga")
    page.goto("/admin/activities/benefitissue/add/")
    page.select_option("#id_benefit", str(benefit.pk))
    page.select_option("#id_segment", str(segment.pk))
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    issue = BenefitIssue.objects.get()
    page.goto(f"/admin/activities/benefitissue/{issue.pk}/change/")
    assert "6 customers in the segment now." in page.inner_text(".issue-plan")
    assert "At most 4 will get one." in page.inner_text(".issue-plan")
    assert page.locator("[data-action=approve]").count() == 0
    shot(page, "requested")

    approver = new_page("en")
    login(approver, "abe")
    approver.goto(f"/admin/activities/benefitissue/{issue.pk}/change/")
    approver.click("[data-action=approve]")
    approver.click("[data-action=confirm]")  # the confirmation page of a destructive step
    approver.wait_for_selector(".messagelist .success")
    issue.refresh_from_db()
    assert issue.state == IssueState.APPROVED

    coupon_issue.run_issue(issue_id=issue.pk)
    approver.goto(f"/admin/activities/benefitissue/{issue.pk}/change/")
    approver.wait_for_function(
        "() => document.getElementById('issue-live').dataset.state === 'completed'"
    )
    assert "4 issued, 2 not issued of 6" in approver.inner_text("#issue-live-text")
    shot(approver, "completed")
    assert Grant.objects.filter(benefit=benefit).count() == 4

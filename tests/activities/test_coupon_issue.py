"""Issuing a benefit to a segment: review, stock and budget, exactly once per customer, the
command line."""

import threading
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection

from activities.models import (
    BenefitIssue,
    CodeSource,
    Grant,
    IssueOutcome,
    IssueSkip,
    IssueState,
)
from activities.services import approvals, coupon_codes, coupon_issue
from core.errors import TransitionNotAllowed
from tests.factories import ActivityFactory, BenefitFactory
from tests.notifications.factories import make_customers, make_segment


def operator(name, *permissions):
    user = User.objects.create_user(name, password="pw", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)


def approved_benefit(*, pool: bytes = b"", **fields):
    activity = ActivityFactory(
        running=True, budget_total=fields.pop("budget", None), timezone="Asia/Shanghai"
    )
    activity.budget_remaining = activity.budget_total
    activity.save()
    benefit = BenefitFactory(activity=activity, code="gift", kind="coupon", **fields)
    if pool:
        # The pool's size is its stock: uploading is a change an approver sees.
        coupon_codes.upload_pool(benefit=benefit, data=pool)
    approvals.record_approval(activity=activity, bypass="test")
    return benefit


def start(benefit, segment, **kwargs):
    issue = coupon_issue.request_issue(benefit=benefit, segment=segment, **kwargs)
    return coupon_issue.approve_issue(issue=issue, bypass="test", start=False)


@pytest.mark.django_db
def test_issue_needs_a_second_person_with_the_permission():
    benefit = approved_benefit()
    segment = make_segment(make_customers(3))
    requester = operator("ann", "approve_benefitissue")
    issue = coupon_issue.request_issue(benefit=benefit, segment=segment, by=requester)
    assert (issue.state, issue.audience) == (IssueState.REQUESTED, 3)
    with pytest.raises(TransitionNotAllowed):
        coupon_issue.approve_issue(issue=issue, by=requester, start=False)
    with pytest.raises(PermissionDenied):
        coupon_issue.approve_issue(issue=issue, by=operator("bob"), start=False)
    approved = coupon_issue.approve_issue(
        issue=issue, by=operator("cy", "approve_benefitissue"), start=False
    )
    assert approved.state == IssueState.APPROVED


@pytest.mark.django_db
def test_an_unapproved_activity_cannot_issue():
    benefit = approved_benefit()
    benefit.value = Decimal("3.00")
    benefit.save()  # the configuration changed after approval
    with pytest.raises(approvals.NotApproved):
        coupon_issue.request_issue(benefit=benefit, segment=make_segment(make_customers(1)))


@pytest.mark.django_db
def test_stock_runs_out_midway_and_the_rest_are_recorded_out_of_stock():
    benefit = approved_benefit(stock_total=25, code_prefix="GIFT-")
    ids = make_customers(40)
    issue = start(benefit, make_segment(ids))
    while (page := coupon_issue.issue_next_page(issue_id=issue.pk, page_size=10)) is not None:
        if page.done:
            break
    issue.refresh_from_db()
    assert (issue.state, issue.issued, issue.skipped, issue.cursor) == (
        IssueState.COMPLETED,
        25,
        15,
        ids[-1],
    )
    grants = Grant.objects.filter(benefit=benefit)
    assert sorted(grants.values_list("customer_id", flat=True)) == ids[:25]
    assert all(code.startswith("GIFT-") for code in grants.values_list("code", flat=True))
    assert (
        sorted(
            IssueSkip.objects.filter(issue=issue, outcome=IssueOutcome.OUT_OF_STOCK).values_list(
                "customer_id", flat=True
            )
        )
        == ids[25:]
    )
    benefit.refresh_from_db()
    assert benefit.stock_remaining == 0


@pytest.mark.django_db
def test_budget_limits_the_issue_and_customers_holding_one_are_skipped():
    benefit = approved_benefit(value=Decimal("5.00"), budget=Decimal("32.00"))
    ids = make_customers(10)
    Grant.objects.create(
        benefit=benefit, activity=benefit.activity, customer_id=ids[0], idempotency_key="held"
    )
    issue = start(benefit, make_segment(ids))
    assert coupon_issue.run_issue(issue_id=issue.pk) == "done"
    issue.refresh_from_db()
    assert (issue.issued, issue.skipped) == (6, 4)
    outcomes = dict(IssueSkip.objects.filter(issue=issue).values_list("customer_id", "outcome"))
    assert outcomes == {
        ids[0]: IssueOutcome.ALREADY_HELD,
        ids[7]: IssueOutcome.BUDGET_EXHAUSTED,
        ids[8]: IssueOutcome.BUDGET_EXHAUSTED,
        ids[9]: IssueOutcome.BUDGET_EXHAUSTED,
    }
    benefit.activity.refresh_from_db()
    assert benefit.activity.budget_remaining == Decimal("2.00")


@pytest.mark.django_db
def test_pool_codes_are_issued_to_the_segment():
    benefit = approved_benefit(code_source=CodeSource.POOL, pool=b"P-0001\nP-0002\nP-0003\n")
    ids = make_customers(4)
    issue = start(benefit, make_segment(ids))
    coupon_issue.run_issue(issue_id=issue.pk)
    codes = dict(Grant.objects.filter(benefit=benefit).values_list("customer_id", "code"))
    assert sorted(codes) == ids[:3]
    assert sorted(codes.values()) == ["P-0001", "P-0002", "P-0003"]
    assert IssueSkip.objects.get(issue=issue).customer_id == ids[3]


@pytest.mark.django_db(transaction=True)
def test_two_runs_of_one_issue_at_once_issue_each_customer_once():
    benefit = approved_benefit(stock_total=150)
    ids = make_customers(200)
    issue = start(benefit, make_segment(ids))

    def runner() -> None:
        try:
            while (
                page := coupon_issue.issue_next_page(issue_id=issue.pk, page_size=7)
            ) is not None:
                if page.done:
                    break
        finally:
            connection.close()

    threads = [threading.Thread(target=runner) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    issue.refresh_from_db()
    assert (issue.state, issue.issued, issue.skipped) == (IssueState.COMPLETED, 150, 50)
    customers = list(Grant.objects.filter(benefit=benefit).values_list("customer_id", flat=True))
    assert len(customers) == len(set(customers)) == 150
    assert IssueSkip.objects.filter(issue=issue).count() == 50


@pytest.mark.django_db
def test_the_command_issues_through_the_same_service():
    benefit = approved_benefit()
    ids = make_customers(12)
    segment = make_segment(ids, code="vip")
    call_command(
        "issue_benefit", benefit.activity.code, "gift", "--segment", "vip", "--page-size", "5"
    )
    issue = BenefitIssue.objects.get()
    assert (issue.state, issue.issued, issue.bypass.startswith("manage.py issue_benefit")) == (
        IssueState.COMPLETED,
        12,
        True,
    )
    assert Grant.objects.filter(benefit=benefit).count() == 12
    assert segment.pk == issue.segment_id

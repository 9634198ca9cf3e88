"""An issue to a segment survives its workers being SIGKILLed midway, twice, and still gives
every customer of the segment exactly one coupon."""

import datetime as dt

import pytest
from django.db.models import Count

from activities.models import BenefitIssue, Grant, IssueState
from activities.services import approvals, coupon_issue
from tests.conftest import wait_until
from tests.factories import ActivityFactory, BenefitFactory
from tests.notifications.factories import make_customers, make_segment

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

AUDIENCE = 3000
# Small pages and short tasks: many commits to land a kill between, and tasks that hand over.
WORKER_ENV = {"GAMBIT_ISSUE_PAGE_SIZE": "10", "GAMBIT_ISSUE_SECONDS": "0.5"}


def progress(issue_id: int) -> BenefitIssue:
    return BenefitIssue.objects.get(pk=issue_id)


def test_an_issue_killed_twice_midway_completes_exactly_once_per_customer(make_worker):
    activity = ActivityFactory(running=True)
    benefit = BenefitFactory(activity=activity, code="gift", kind="coupon", code_prefix="K-")
    approvals.record_approval(activity=activity, bypass="test")
    ids = make_customers(AUDIENCE)
    issue = coupon_issue.request_issue(benefit=benefit, segment=make_segment(ids))
    coupon_issue.approve_issue(issue=issue, bypass="test")

    seen = 0
    for round_ in range(2):
        worker = make_worker(concurrency=2, queues="fanout,default", env_overrides=WORKER_ENV)
        if round_:
            # The killed worker's task sits unacknowledged until the broker's visibility
            # timeout; beat's sweep starts the stalled issue again long before that.
            coupon_issue.resume_stalled_issues(older_than=dt.timedelta(0))
        floor = seen
        wait_until(lambda floor=floor: progress(issue.pk).issued >= floor + 300, timeout=120)
        worker.kill()
        current = progress(issue.pk)
        assert current.state == IssueState.APPROVED, "the kill must land midway"
        seen = current.issued
        # What a dead worker committed is there; its open page is not.
        assert Grant.objects.filter(benefit=benefit).count() == current.issued

    # The beat sweep starts it again, and a stray second start runs alongside.
    make_worker(concurrency=2, queues="fanout,default", env_overrides=WORKER_ENV)
    coupon_issue.resume_stalled_issues(older_than=dt.timedelta(0))
    coupon_issue.resume_stalled_issues(older_than=dt.timedelta(0))
    wait_until(lambda: progress(issue.pk).state == IssueState.COMPLETED, timeout=240)

    done = progress(issue.pk)
    assert (done.issued, done.skipped, done.cursor) == (AUDIENCE, 0, ids[-1])
    per_customer = (
        Grant.objects.filter(benefit=benefit)
        .order_by()
        .values("customer_id")
        .annotate(n=Count("pk"))
    )
    assert sorted(row["customer_id"] for row in per_customer) == sorted(ids)
    assert {row["n"] for row in per_customer} == {1}
    codes = Grant.objects.filter(benefit=benefit).values_list("code", flat=True)
    assert len(set(codes)) == AUDIENCE

"""A coupon issued to a segment is the customer's grant of the benefit: it counts against the
benefit's per-customer limit exactly as a chain's grant does, in both directions."""

import pytest

from activities.models import (
    ChainRun,
    Grant,
    IssueOutcome,
    IssueSkip,
    ParticipationCounter,
    RunOutcome,
)
from activities.services import approvals, coupon_issue
from activities.services.events import accept_event, process_event
from tests.activities.test_coupons import coupon_activity
from tests.factories import make_api_key
from tests.notifications.factories import make_customers, make_segment


def limited_coupon(*, limit=1, stock=None):
    activity, benefit = coupon_activity(stock=stock, per_customer_limit=limit)
    approvals.record_approval(activity=activity, bypass="test")
    return activity, benefit


def issue_to(benefit, customer_ids, segment="audience"):
    segment = make_segment(customer_ids, code=segment)
    issue = coupon_issue.request_issue(benefit=benefit, segment=segment)
    coupon_issue.approve_issue(issue=issue, bypass="test", start=False)
    assert coupon_issue.run_issue(issue_id=issue.pk) == "done"
    return issue


def claim(external_id, key):
    event, _ = accept_event(
        client=make_api_key()[0],
        idempotency_key=key,
        channel_code="coupon.claim",
        customer_external_id=external_id,
        payload={},
    )
    process_event(event_id=event.pk)
    return ChainRun.objects.get(event=event)


def use(grant):
    grant.redeem(order="o-1")
    grant.save()


def counts(activity):
    return dict(
        ParticipationCounter.objects.filter(activity=activity, key="benefit:c10").values_list(
            "scope", "count"
        )
    )


@pytest.mark.django_db
def test_a_coupon_from_a_segment_uses_up_the_limit_an_event_then_meets():
    activity, benefit = limited_coupon()
    (alice,) = make_customers(1, prefix="alice")
    issue_to(benefit, [alice])
    use(Grant.objects.get(customer_id=alice))
    run = claim("alice-0", "k-1")
    assert (run.outcome, run.reason) == (RunOutcome.REJECTED, "c10_limit_reached")
    assert Grant.objects.filter(customer_id=alice).count() == 1
    assert counts(activity) == {f"c:{alice}": 1}


@pytest.mark.django_db
def test_a_coupon_from_an_event_uses_up_the_limit_a_segment_issue_then_meets():
    activity, benefit = limited_coupon()
    bob, carol = make_customers(2, prefix="bob")
    assert claim("bob-0", "k-1").outcome == RunOutcome.GRANTED
    use(Grant.objects.get(customer_id=bob))
    issue = issue_to(benefit, [bob, carol])
    issue.refresh_from_db()
    assert (issue.issued, issue.skipped) == (1, 1)
    assert list(IssueSkip.objects.filter(issue=issue).values_list("customer_id", "outcome")) == [
        (bob, IssueOutcome.LIMIT_REACHED)
    ]
    holders = Grant.objects.filter(benefit=benefit).values_list("customer_id", flat=True)
    assert sorted(holders) == [bob, carol]
    assert counts(activity) == {f"c:{bob}": 1, f"c:{carol}": 1}


@pytest.mark.django_db
def test_a_limit_of_two_lets_a_segment_coupon_and_an_event_coupon_through_then_stops():
    activity, benefit = limited_coupon(limit=2)
    (dan,) = make_customers(1, prefix="dan")
    issue_to(benefit, [dan])
    use(Grant.objects.get(customer_id=dan))
    assert claim("dan-0", "k-1").outcome == RunOutcome.GRANTED
    use(Grant.objects.get(customer_id=dan, state="issued"))
    second = issue_to(benefit, [dan], segment="again")
    assert list(IssueSkip.objects.filter(issue=second).values_list("outcome", flat=True)) == [
        IssueOutcome.LIMIT_REACHED
    ]
    assert Grant.objects.filter(customer_id=dan).count() == 2
    assert counts(activity) == {f"c:{dan}": 2}


@pytest.mark.django_db
def test_customers_the_stock_misses_are_not_counted():
    activity, benefit = limited_coupon(stock=1)
    first, second = make_customers(2, prefix="eve")
    issue = issue_to(benefit, [first, second])
    assert dict(IssueSkip.objects.filter(issue=issue).values_list("customer_id", "outcome")) == {
        second: IssueOutcome.OUT_OF_STOCK
    }
    assert counts(activity) == {f"c:{first}": 1, f"c:{second}": 0}

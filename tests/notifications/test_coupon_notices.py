"""The message after an issue to a segment: each customer gets their own code, over real SMTP."""

from zoneinfo import ZoneInfo

import pytest

from activities.models import Grant
from activities.services import approvals, coupon_issue
from core.errors import InvalidConfiguration
from notifications.models import Delivery
from notifications.services import sending
from tests.factories import ActivityFactory, BenefitFactory
from tests.notifications.factories import (
    NotificationTemplateFactory,
    make_customers,
    make_segment,
)

pytestmark = pytest.mark.django_db


def coupon_benefit():
    activity = ActivityFactory(running=True, timezone="Asia/Shanghai")
    benefit = BenefitFactory(
        activity=activity, code="gift", kind="coupon", value="20.00", valid_days=7
    )
    approvals.record_approval(activity=activity, bypass="test")
    return benefit


def test_each_customer_is_mailed_their_own_code(smtp):
    benefit = coupon_benefit()
    template = NotificationTemplateFactory(
        subject="A gift for {{ customer.name }}",
        body="Code {{ coupon.code }}, worth {{ coupon.value }}, until {{ coupon.valid_until }}.",
    )
    ids = make_customers(5)
    issue = coupon_issue.request_issue(
        benefit=benefit, segment=make_segment(ids), notification_template=template
    )
    coupon_issue.approve_issue(issue=issue, bypass="test", start=False)
    coupon_issue.run_issue(issue_id=issue.pk)
    for delivery_id in Delivery.objects.values_list("pk", flat=True):
        sending.send_single(delivery_id=delivery_id)
    received = {message.to: message for message in smtp.snapshot()}
    assert len(received) == 5
    for grant in Grant.objects.filter(benefit=benefit).select_related("customer"):
        until = grant.valid_until.astimezone(ZoneInfo("Asia/Shanghai"))
        assert until.strftime("%H:%M") == "00:00"
        message = received[grant.customer.email]
        assert message.subject == f"A gift for {grant.customer.name}"
        assert message.body.strip() == (
            f"Code {grant.code}, worth 20.00, until {until:%Y-%m-%d %H:%M}."
        )
    assert len({m.body for m in received.values()}) == 5


def test_a_template_that_needs_an_event_is_refused():
    template = NotificationTemplateFactory(body="You scored {{ event.score }}")
    with pytest.raises(InvalidConfiguration):
        coupon_issue.request_issue(
            benefit=coupon_benefit(),
            segment=make_segment(make_customers(1)),
            notification_template=template,
        )

"""Activities that pass `check_activity`, for the lifecycle and scheduling tests."""

import datetime as dt

from django.utils import timezone

from activities.models import Activity
from activities.services.approvals import record_approval
from tests.factories import ActivityFactory, ChainFactory, ChannelFactory, StepFactory


def valid_draft(**kwargs) -> Activity:
    """A draft whose template has one chain (order.paid -> build_result); window from kwargs,
    else tomorrow for ten days."""
    now = timezone.now()
    chain = ChainFactory(channel=ChannelFactory(code="order.paid"))
    StepFactory(chain=chain, position=0, processor="build_result")
    defaults = {
        "template": chain.template,
        "starts_at": now + dt.timedelta(days=1),
        "ends_at": now + dt.timedelta(days=10),
    }
    return ActivityFactory(**{**defaults, **kwargs})


def approved(activity: Activity) -> Activity:
    """The activity with its configuration approved as it is now (the lifecycle tests are about
    the lifecycle; tests/activities/test_approvals.py is about approval)."""
    record_approval(activity=activity, bypass="lifecycle test")
    return activity

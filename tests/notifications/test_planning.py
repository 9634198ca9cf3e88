"""Planning in-process: every skip reason decided in SQL, the cursor, counters, resumption."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.models import Broadcast, Delivery, DeliveryStatus
from notifications.services import planning
from segments.models import Customer
from tests.notifications.factories import BroadcastFactory, make_customers, make_segment

pytestmark = pytest.mark.django_db


def plan_all(broadcast: Broadcast, *, page_size: int = 2000) -> list[str]:
    outcomes = []
    while True:
        outcomes.append(planning.plan_next_page(broadcast_id=broadcast.pk))
        if outcomes[-1] != "more":
            return outcomes


def sending(**fields) -> Broadcast:
    broadcast = BroadcastFactory(**fields)
    Broadcast.objects.filter(pk=broadcast.pk).update(state="sending", started_at=timezone.now())
    broadcast.refresh_from_db()
    return broadcast


def outcomes(broadcast: Broadcast) -> dict[str, tuple[str, str]]:
    return {
        external_id: (status, reason)
        for external_id, status, reason in Delivery.objects.filter(broadcast=broadcast).values_list(
            "customer__external_id", "status", "reason"
        )
    }


def test_every_skip_reason(settings):
    settings.NOTIFICATIONS_PAGE_SIZE = 3
    ok = make_customers(2, prefix="ok")
    unsubscribed = make_customers(1, prefix="unsub", unsubscribed_at=timezone.now())
    no_consent = make_customers(1, prefix="noconsent", email_consent=False)
    no_address = make_customers(1, prefix="noaddr")
    Customer.objects.filter(pk__in=no_address).update(email="")
    same_as_ok = make_customers(1, prefix="dup")
    Customer.objects.filter(pk__in=same_as_ok).update(email="OK-0@example.test ")
    segment = make_segment(ok + unsubscribed + no_consent + no_address + same_as_ok)
    broadcast = sending(segment=segment)

    assert plan_all(broadcast) == ["more", "more", "done"]
    assert outcomes(broadcast) == {
        "ok-0": ("queued", ""),
        "ok-1": ("queued", ""),
        "unsub-0": ("skipped", "unsubscribed"),
        "noconsent-0": ("skipped", "no_consent"),
        "noaddr-0": ("skipped", "no_address"),
        "dup-0": ("skipped", "duplicate_address"),
    }
    broadcast.refresh_from_db()
    assert (broadcast.planned, broadcast.skipped) == (6, 4)
    assert broadcast.skipped_by_reason == {
        "unsubscribed": 1,
        "no_consent": 1,
        "no_address": 1,
        "duplicate_address": 1,
    }
    assert broadcast.plan_cursor == max(same_as_ok)
    assert broadcast.planned_at is not None


def test_a_crashed_planner_resumes_from_its_cursor_without_duplicates(settings):
    settings.NOTIFICATIONS_PAGE_SIZE = 100
    ids = make_customers(250)
    broadcast = sending(segment=make_segment(ids))
    assert planning.plan_next_page(broadcast_id=broadcast.pk) == "more"
    # The crash: the cursor is rewound as if the page's commit had been lost after insert.
    Broadcast.objects.filter(pk=broadcast.pk).update(plan_cursor=0)
    assert plan_all(broadcast) == ["more", "more", "done"]
    broadcast.refresh_from_db()
    assert Delivery.objects.filter(broadcast=broadcast).count() == 250
    # Counters follow rows actually inserted: the replayed page added nothing.
    assert broadcast.planned == 250
    assert plan_all(broadcast) == ["done"]


def test_frequency_cap_counts_other_broadcasts_in_the_window():
    ids = make_customers(3)
    segment = make_segment(ids)
    for _ in range(2):
        earlier = sending(segment=segment, frequency_cap=None)
        plan_all(earlier)
    # A delivery from outside the window does not count.
    Delivery.objects.filter(customer_id=ids[0]).update(
        created_at=timezone.now() - dt.timedelta(days=2)
    )
    capped = sending(segment=segment, frequency_cap=2, frequency_window=dt.timedelta(hours=24))
    plan_all(capped)
    assert outcomes(capped) == {
        "c-0": ("queued", ""),
        "c-1": ("skipped", "frequency_cap"),
        "c-2": ("skipped", "frequency_cap"),
    }


def test_quiet_hours_in_each_customers_own_timezone(time_machine):
    # 23:30 in Shanghai, 16:30 in London, 08:30 in Los Angeles.
    time_machine.move_to(dt.datetime(2026, 6, 1, 15, 30, tzinfo=dt.UTC), tick=False)
    shanghai = make_customers(1, prefix="sh", timezone="Asia/Shanghai")
    london = make_customers(1, prefix="ldn", timezone="Europe/London")
    los_angeles = make_customers(1, prefix="la", timezone="America/Los_Angeles")
    unknown = make_customers(1, prefix="bad", timezone="Mars/Olympus")
    broadcast = sending(
        segment=make_segment(shanghai + london + los_angeles + unknown),
        timezone="Asia/Shanghai",
        quiet_start=dt.time(22, 0),
        quiet_end=dt.time(9, 0),
    )
    plan_all(broadcast)
    assert outcomes(broadcast) == {
        "sh-0": ("skipped", "quiet_hours"),
        "ldn-0": ("queued", ""),
        "la-0": ("skipped", "quiet_hours"),
        # Not a zone: taken to live in the broadcast's zone (Shanghai), where it is 23:30.
        "bad-0": ("skipped", "quiet_hours"),
    }


def test_channel_addresses_and_consent():
    ids = make_customers(3, wechat_consent=True)
    Customer.objects.filter(pk=ids[0]).update(wechat_openid="o-1")
    Customer.objects.filter(pk=ids[1]).update(wechat_openid="o-2", wechat_consent=False)
    broadcast = sending(
        segment=make_segment(ids),
        template__channel="wechat",
        template__provider_template_id="TPL",
        template__fields={"thing1": "{{ customer.name }}"},
    )
    plan_all(broadcast)
    assert outcomes(broadcast) == {
        "c-0": ("queued", ""),
        "c-1": ("skipped", "no_consent"),
        "c-2": ("skipped", "no_address"),
    }
    assert Delivery.objects.get(customer_id=ids[0]).address == "o-1"


def test_planning_is_one_insert_per_page(settings):
    settings.NOTIFICATIONS_PAGE_SIZE = 5000
    ids = make_customers(5000)
    broadcast = sending(segment=make_segment(ids))
    with CaptureQueriesContext(connection) as captured:
        assert planning.plan_next_page(broadcast_id=broadcast.pk) == "more"
    inserts = [q["sql"] for q in captured if "INSERT INTO" in q["sql"]]
    assert len(inserts) == 1
    assert 'ON CONFLICT ("broadcast_id", "customer_id")' in inserts[0]
    assert (
        Delivery.objects.filter(broadcast=broadcast, status=DeliveryStatus.QUEUED).count() == 5000
    )

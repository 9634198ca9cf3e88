"""Journeys on the real stack: gunicorn, Redis, Celery workers and beat's sweep of due
waiting runs; a worker SIGKILLed and Redis restarted mid-sweep lose and repeat nothing."""

import uuid

import httpx
import pytest
from django.utils import timezone

from activities.models import ChainRun, Grant, RunOutcome, WaitingRun, WaitState
from activities.services import lifecycle
from config.celery import app
from notifications.models import Delivery
from segments.models import Customer
from tests.conftest import wait_until
from tests.factories import make_api_key
from tests.journeys.builders import build_points_journey, build_unpaid_reminder, make_waiting_runs

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RESUME_TASK = "activities.tasks.resume_due_waits_task"


def test_the_unpaid_order_reminder_goes_to_the_customer_who_did_not_pay(start_stack):
    build_unpaid_reminder(timeout="4s")
    for name in ("ann", "bob"):
        Customer.objects.create(
            external_id=name, name=name.title(), email=f"{name}@example.test", email_consent=True
        )
    stack = start_stack(env_overrides={"GAMBIT_JOURNEY_SWEEP_INTERVAL": "1"}, beat=True)
    _, raw = make_api_key()
    with httpx.Client(
        base_url=stack.base_url, timeout=60, headers={"Authorization": f"Api-Key {raw}"}
    ) as client:
        for name in ("ann", "bob"):
            order = {"customer": name, "amount": "42.00", "placed_at": timezone.now().isoformat()}
            assert client.put(f"/api/v1/orders/o-{name}/", json=order).status_code in (200, 201)
            placed = client.post(
                "/api/v1/events/",
                json={
                    "channel": "order.placed",
                    "customer": name,
                    "payload": {"order": f"o-{name}"},
                },
                headers={"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=10"},
            ).json()
            assert placed["runs"][0]["outcome"] == "waiting"
            assert placed["runs"][0]["awaiting"] == "order.paid"
        assert client.post("/api/v1/orders/o-ann/pay/").status_code == 200
    ann = ChainRun.objects.get(customer__external_id="ann")
    bob = ChainRun.objects.get(customer__external_id="bob")
    wait_until(lambda: ChainRun.objects.get(pk=ann.pk).outcome == RunOutcome.COMPLETED, timeout=60)
    wait_until(lambda: ChainRun.objects.get(pk=bob.pk).outcome == RunOutcome.GRANTED, timeout=60)
    assert list(Grant.objects.values_list("customer__external_id", "benefit__code")) == [
        ("bob", "pay-now")
    ]
    assert list(Delivery.objects.values_list("customer__external_id", flat=True)) == ["bob"]
    assert dict(WaitingRun.objects.values_list("customer__external_id", "reason")) == {
        "ann": "event",
        "bob": "timeout",
    }


def _resumed() -> int:
    return WaitingRun.objects.filter(state=WaitState.RESUMED).count()


def test_a_worker_sigkilled_and_redis_restarted_mid_sweep_lose_and_repeat_no_resume(
    start_stack, make_worker, redis_server
):
    count = 10_000
    activity = build_points_journey(code="killed")
    make_waiting_runs(activity=activity, channel="signed.up", count=count, due_at=timezone.now())
    # Broker and application Redis both on a server of the test's own, which it takes away.
    private = {
        "CELERY_BROKER_URL": redis_server.url,
        "REDIS_URL": redis_server.url,
        "GAMBIT_JOURNEY_SWEEP_INTERVAL": "1",
    }
    stack = start_stack(env_overrides=private, beat=True)
    wait_until(lambda: _resumed() >= 500, timeout=120, interval=0.01)
    assert stack.worker is not None
    stack.worker.kill()
    # No persistence: whatever the broker held (sweep tasks sent, unacked) is gone with it.
    redis_server.stop()
    at_kill = _resumed()
    assert at_kill < count, "the sweep finished before the kill; raise the count"
    redis_server.start()
    make_worker(env_overrides=private)
    wait_until(lambda: _resumed() == count, timeout=300)
    runs = ChainRun.objects.filter(activity=activity)
    assert runs.filter(outcome=RunOutcome.GRANTED).count() == count
    assert Grant.objects.filter(activity=activity).count() == count
    assert Grant.objects.filter(activity=activity).values("run_id").distinct().count() == count
    resumed_entries = [
        sum(1 for step in steps if step["outcome"] == "resumed")
        for steps in runs.values_list("steps", flat=True)
    ]
    assert set(resumed_entries) == {1}
    assert WaitingRun.objects.filter(activity=activity, state=WaitState.WAITING).count() == 0


def test_pause_holds_the_sweep_and_resume_lets_it_through(celery_worker):
    activity = build_points_journey(code="held")
    make_waiting_runs(activity=activity, channel="signed.up", count=20, due_at=timezone.now())
    lifecycle.pause_activity(activity=activity)
    app.send_task(RESUME_TASK, queue="default")
    celery_worker.wait_idle()
    assert _resumed() == 0
    lifecycle.resume_activity(activity=activity)
    app.send_task(RESUME_TASK, queue="default")
    wait_until(lambda: _resumed() == 20, timeout=60)
    lifecycle.end_activity(activity_id=activity.pk)
    assert Grant.objects.filter(activity=activity).count() == 20

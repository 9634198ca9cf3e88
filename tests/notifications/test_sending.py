"""Sending in-process against real providers on loopback: outcomes per delivery, WeChat error
codes and token cache, idempotency keys, retries, the circuit breaker and the auto-pause."""

import datetime as dt
import threading
import time
import uuid

import pytest
from django.utils import timezone

from core.signing import signature
from notifications import circuit, ratelimit
from notifications.models import Broadcast, BroadcastState, Delivery
from notifications.services import batch, broadcasts, planning, sending
from segments.models import Customer
from tests.notifications.factories import BroadcastFactory, make_customers, make_segment

pytestmark = pytest.mark.django_db


def started(customer_ids, **fields) -> Broadcast:
    broadcast = BroadcastFactory(segment=make_segment(customer_ids), **fields)
    Broadcast.objects.filter(pk=broadcast.pk).update(state="sending", started_at=timezone.now())
    while planning.plan_next_page(broadcast_id=broadcast.pk) == "more":
        pass
    broadcast.refresh_from_db()
    return broadcast


def statuses(broadcast: Broadcast) -> dict[str, tuple[str, str]]:
    return dict(
        (external_id, (status, reason))
        for external_id, status, reason in Delivery.objects.filter(broadcast=broadcast).values_list(
            "customer__external_id", "status", "reason"
        )
    )


def make_due(broadcast: Broadcast) -> None:
    Delivery.objects.filter(broadcast=broadcast, status="queued").update(next_attempt_at=None)


def test_a_batch_reaches_the_smtp_server_once_per_customer(smtp):
    broadcast = started(make_customers(5), template__subject="Hi {{ customer.name }}")
    report = sending.send_batch(broadcast_id=broadcast.pk)
    assert report.claimed == 5
    assert report.counts == {"sent": 5}
    received = sorted(smtp.snapshot(), key=lambda message: message.to)
    assert [message.to for message in received] == [f"c-{i}@example.test" for i in range(5)]
    assert received[0].subject == "Hi Customer 0"
    delivery = Delivery.objects.get(broadcast=broadcast, customer__external_id="c-0")
    assert received[0].message_id == f"<gambit-d{delivery.pk}@gambit.local>"
    assert delivery.provider_message_id == received[0].message_id
    broadcast.refresh_from_db()
    assert (broadcast.sent, broadcast.failed, broadcast.skipped) == (5, 0, 0)
    assert broadcasts.complete_if_done(broadcast_id=broadcast.pk)


def test_a_render_failure_fails_only_that_delivery(smtp):
    ids = make_customers(3)
    Customer.objects.filter(pk__in=ids[:2]).update(level="gold")
    broadcast = started(ids, template__body="Your level: {{ customer.level }}")
    sending.send_batch(broadcast_id=broadcast.pk)
    assert statuses(broadcast) == {
        "c-0": ("sent", ""),
        "c-1": ("sent", ""),
        "c-2": ("failed", "render_error"),
    }
    assert Delivery.objects.get(customer_id=ids[2]).error == "customer.level has no value."
    assert sorted(m.to for m in smtp.snapshot()) == ["c-0@example.test", "c-1@example.test"]
    broadcast.refresh_from_db()
    assert (broadcast.sent, broadcast.failed) == (2, 1)


def wechat_broadcast(openids: list[str]) -> Broadcast:
    ids = make_customers(len(openids), wechat_consent=True)
    for customer_id, openid in zip(ids, openids, strict=True):
        Customer.objects.filter(pk=customer_id).update(wechat_openid=openid)
    return started(
        ids,
        template__channel="wechat",
        template__provider_template_id="TPL-1",
        template__link="pages/home",
        template__fields={"thing1": "{{ customer.name }}", "thing2": "{{ broadcast.name }}"},
    )


def test_wechat_error_codes_and_the_cached_access_token(http_sink):
    http_sink.busy["busy-1"] = 2
    broadcast = wechat_broadcast(["ok-1", "refused-1", "invalid-1", "busy-1"])
    sending.send_batch(broadcast_id=broadcast.pk)
    assert statuses(broadcast) == {
        "c-0": ("sent", ""),
        "c-1": ("skipped", "not_subscribed"),
        "c-2": ("failed", "invalid_openid"),
        "c-3": ("queued", ""),  # 45009: retried with backoff
    }
    busy = Delivery.objects.get(broadcast=broadcast, address="busy-1")
    assert busy.next_attempt_at > timezone.now()
    assert busy.error.startswith("wechat_45009")
    for _ in range(2):
        make_due(broadcast)
        sending.send_batch(broadcast_id=broadcast.pk)
    assert statuses(broadcast)["c-3"] == ("sent", "")
    assert Delivery.objects.get(pk=busy.pk).attempts == 3
    # One token for every call, fetched once.
    assert http_sink.token_requests == 1
    sends = [call for call in http_sink.calls if call["path"].endswith("/subscribe/send")]
    assert {call["query"]["access_token"][0] for call in sends} == {"token-1"}
    first = next(call for call in sends if call["body"]["touser"] == "ok-1")
    assert first["body"] == {
        "touser": "ok-1",
        "template_id": "TPL-1",
        "page": "pages/home",
        "data": {"thing1": {"value": "Customer 0"}, "thing2": {"value": broadcast.name}},
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }
    broadcast.refresh_from_db()
    assert broadcast.skipped_by_reason == {"not_subscribed": 1}


def test_an_expired_wechat_token_is_refreshed_once(http_sink):
    broadcast = wechat_broadcast(["ok-1", "ok-2"])
    sending.send_batch(broadcast_id=broadcast.pk)  # caches token-1
    http_sink.expired_tokens.add("token-1")
    second = wechat_broadcast_again(broadcast)
    sending.send_batch(broadcast_id=second.pk)
    assert set(statuses(second).values()) == {("sent", "")}
    assert http_sink.token_requests == 2


def wechat_broadcast_again(broadcast: Broadcast) -> Broadcast:
    again = BroadcastFactory(segment=broadcast.segment, template=broadcast.template)
    Broadcast.objects.filter(pk=again.pk).update(state="sending", started_at=timezone.now())
    planning.plan_next_page(broadcast_id=again.pk)
    return again


@pytest.mark.parametrize("channel", ["sms", "webhook"])
def test_http_channels_keep_one_idempotency_key_across_retries(http_sink, channel):
    ids = make_customers(1, sms_consent=True, phone="+8613800000000")
    broadcast = started(ids, template__channel=channel, template__body="Hi {{ customer.name }}")
    delivery = Delivery.objects.get(broadcast=broadcast)
    http_sink.fail_status = 503
    sending.send_batch(broadcast_id=broadcast.pk)
    assert statuses(broadcast) == {"c-0": ("queued", "")}
    http_sink.fail_status = None
    make_due(broadcast)
    sending.send_batch(broadcast_id=broadcast.pk)
    assert statuses(broadcast) == {"c-0": ("sent", "")}
    calls = [call for call in http_sink.calls if call["path"] == f"/{channel}"]
    assert [call["headers"]["Idempotency-Key"] for call in calls] == [f"gambit-d{delivery.pk}"] * 2
    if channel == "webhook":
        assert calls[1]["body"]["body"] == "Hi Customer 0"
        headers = calls[1]["headers"]
        assert abs(int(headers["X-Gambit-Timestamp"]) - time.time()) < 60
        assert headers["X-Gambit-Signature"] == signature(
            secret="hook-secret", raw=calls[1]["raw"], timestamp=int(headers["X-Gambit-Timestamp"])
        )
    else:
        assert calls[1]["body"]["to"] == "+8613800000000"


def test_the_circuit_opens_after_consecutive_provider_errors(smtp):
    smtp.stop()
    broadcast = started(make_customers(40), batch_size=40, pause_after_errors=1000)
    report = sending.send_batch(broadcast_id=broadcast.pk)
    assert circuit.open_for("email") > 0
    retried = report.counts.get("retry", 0)
    # It stopped well before trying all 40: the threshold plus what was already in flight.
    assert 5 <= retried < 40
    assert Delivery.objects.filter(broadcast=broadcast, status="queued").count() == 40
    assert Delivery.objects.filter(broadcast=broadcast, attempts=1).count() == retried
    # While open, a sender claims nothing and says how long to wait.
    report = sending.send_batch(broadcast_id=broadcast.pk)
    assert report.claimed == 0
    assert 0 < report.retry_in <= 1.0


def test_a_provider_outage_pauses_the_broadcast_and_resume_completes_it(smtp):
    smtp.stop()
    broadcast = started(make_customers(20), batch_size=20, pause_after_errors=3)
    report = sending.send_batch(broadcast_id=broadcast.pk)
    broadcast.refresh_from_db()
    assert broadcast.state == BroadcastState.PAUSED
    assert broadcast.state_reason.startswith("paused after ")
    assert report.counts.get("sent", 0) == 0
    assert Delivery.objects.filter(broadcast=broadcast, status="queued").count() == 20
    assert sending.send_batch(broadcast_id=broadcast.pk).claimed == 0  # paused: nothing sent

    smtp.start()
    broadcasts.resume_broadcast(broadcast_id=broadcast.pk)
    assert sending.send_batch(broadcast_id=broadcast.pk).counts == {"sent": 20}
    assert len(smtp.by_recipient()) == 20
    assert broadcasts.complete_if_done(broadcast_id=broadcast.pk)
    broadcast.refresh_from_db()
    assert (broadcast.state, broadcast.sent, broadcast.failed) == ("completed", 20, 0)


def test_quiet_hours_are_checked_again_at_send_time(smtp, time_machine):
    time_machine.move_to(dt.datetime(2026, 6, 1, 13, 0, tzinfo=dt.UTC), tick=False)  # 21:00
    broadcast = started(
        make_customers(1, timezone="Asia/Shanghai"),
        quiet_start=dt.time(22, 0),
        quiet_end=dt.time(8, 0),
    )
    assert statuses(broadcast) == {"c-0": ("queued", "")}
    time_machine.move_to(dt.datetime(2026, 6, 1, 14, 30, tzinfo=dt.UTC), tick=False)  # 22:30
    sending.send_batch(broadcast_id=broadcast.pk)
    assert statuses(broadcast) == {"c-0": ("skipped", "quiet_hours")}
    assert smtp.count() == 0


class _StallingStop(threading.Event):
    """The batch's stop flag, whose first wait oversleeps as a stalled process would."""

    def __init__(self, oversleep: float) -> None:
        super().__init__()
        self.oversleep = oversleep

    def wait(self, timeout: float | None = None) -> bool:
        stopped = super().wait(timeout)
        time.sleep(self.oversleep)
        self.oversleep = 0.0
        return stopped


@pytest.mark.parametrize(("oversleep", "reservations"), [(0.0, 1), (0.3, 2)])
def test_a_sender_that_wakes_late_gives_its_slot_up(monkeypatch, oversleep, reservations):
    bucket = f"late-{uuid.uuid4().hex}"
    reserved = []
    real_reserve = ratelimit.reserve

    def spy(name: str, per_second: float) -> float:
        reserved.append(name)
        return real_reserve(name, per_second)

    monkeypatch.setattr(ratelimit, "reserve", spy)
    claimed_batch = batch.Batch(
        backend=None,
        work=[],
        buckets=[(bucket, 20.0)],
        broadcast_id=None,
        claimed_at=timezone.now(),
        heartbeat=None,
    )
    claimed_batch.stop = _StallingStop(oversleep)
    assert claimed_batch._wait_for_slots() is True
    assert reserved == [bucket] * reservations

"""The `notify` chain processor: transactional messages with event data, rendered in the run,
sent after commit; consent always applies, caps and quiet hours only when configured."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from activities.engine.processors.notify import Notify
from activities.models import ChainRun, RunOutcome
from activities.services.events import accept_event, process_event
from notifications.models import Delivery
from notifications.services import sending
from segments.models import Customer
from tests.conftest import wait_until
from tests.factories import ActivityFactory, ChainFactory, ChannelFactory, StepFactory, make_api_key
from tests.notifications.factories import NotificationTemplateFactory


@pytest.fixture
def prize_chain(db):
    """`prize.won` -> notify with the won-prize template."""
    NotificationTemplateFactory(
        code="you-won",
        subject="You won, {{ customer.name }}",
        body="Your prize: {{ event.prize }} ({{ activity.code }})",
    )
    chain = ChainFactory(channel=ChannelFactory(code="prize.won"))
    step = StepFactory(chain=chain, position=0, processor="notify", config={"template": "you-won"})
    ActivityFactory(code="spring", template=chain.template, running=True)
    return step


def fire(customer: str, payload: dict, key: str):
    event, _ = accept_event(
        client=make_api_key()[0],
        idempotency_key=key,
        channel_code="prize.won",
        customer_external_id=customer,
        payload=payload,
    )
    return event


@pytest.mark.django_db
def test_config_names_an_existing_template():
    NotificationTemplateFactory(code="known")
    assert Notify.check_config({"template": "known"}) == []
    errors = Notify.check_config({"template": "unknown"})
    assert [(e.path, e.code) for e in errors] == [("template", "unknown_template")]
    errors = Notify.check_config({"template": "known", "quiet_hours": {"start": "25:00"}})
    # Each problem on the setting it concerns: the missing end, the impossible start.
    assert [e.path for e in errors] == ["quiet_hours.end", "quiet_hours.start"]


@pytest.mark.django_db
def test_the_message_is_rendered_in_the_run_and_sent_after_commit(
    prize_chain, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.NOTIFICATIONS_EMAIL = {
        **settings.NOTIFICATIONS_EMAIL,
        "BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    Customer.objects.create(
        external_id="ada", name="Ada", email="ada@example.test", email_consent=True
    )
    event = fire("ada", {"prize": "a teapot"}, "k1")
    queued = []
    monkeypatch.setattr(
        "notifications.tasks.send_delivery_task.delay",
        lambda delivery_id: queued.append(delivery_id),
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        process_event(event_id=event.pk)
    delivery = Delivery.objects.get()
    run = ChainRun.objects.get()
    assert (delivery.broadcast_id, delivery.status, delivery.address) == (
        None,
        "queued",
        "ada@example.test",
    )
    assert delivery.source_key == f"run:{run.pk}:step:0"
    assert delivery.rendered["body"] == "Your prize: a teapot (spring)"
    assert queued == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    assert queued == [delivery.pk]

    sending.send_single(delivery_id=delivery.pk)
    assert [(m.to, m.subject, m.body) for m in mail.outbox] == [
        (["ada@example.test"], "You won, Ada", "Your prize: a teapot (spring)")
    ]
    assert Delivery.objects.get().status == "sent"
    assert sending.send_single(delivery_id=delivery.pk) is None  # a second task sends nothing


@pytest.mark.django_db
def test_consent_still_applies(prize_chain):
    Customer.objects.create(external_id="bob", name="Bob", email="bob@example.test")
    process_event(event_id=fire("bob", {"prize": "a mug"}, "k2").pk)
    assert list(Delivery.objects.values_list("status", "reason")) == [("skipped", "no_consent")]
    assert ChainRun.objects.get().outcome == RunOutcome.COMPLETED


@pytest.mark.django_db
def test_a_missing_value_fails_the_step_and_nothing_is_recorded(prize_chain):
    Customer.objects.create(
        external_id="cy", name="Cy", email="cy@example.test", email_consent=True
    )
    process_event(event_id=fire("cy", {}, "k3").pk)
    run = ChainRun.objects.get()
    assert (run.outcome, run.reason) == (RunOutcome.FAILED, "render_error")
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_exempt_from_frequency_caps_unless_configured(prize_chain):
    dee = Customer.objects.create(
        external_id="dee", name="Dee", email="dee@example.test", email_consent=True
    )
    from tests.notifications.factories import BroadcastFactory

    for _ in range(3):  # three marketing messages today
        Delivery.objects.create(
            broadcast=BroadcastFactory(), customer=dee, channel="email", status="sent"
        )
    process_event(event_id=fire("dee", {"prize": "a pen"}, "k4").pk)
    assert Delivery.objects.get(broadcast=None).status == "queued"

    prize_chain.config = {
        "template": "you-won",
        "frequency_cap": {"messages": 3, "window_hours": 24},
    }
    prize_chain.save()
    prize_chain.chain.template.version += 1
    prize_chain.chain.template.save()
    process_event(event_id=fire("dee", {"prize": "a pen"}, "k5").pk)
    latest = Delivery.objects.filter(broadcast=None).order_by("-id").first()
    assert (latest.status, latest.reason) == ("skipped", "frequency_cap")
    assert latest.created_at <= timezone.now()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_storefront_event_sends_the_message_through_the_worker(prize_chain, smtp, celery_worker):
    Customer.objects.create(
        external_id="eve", name="Eve", email="eve@example.test", email_consent=True
    )
    from activities.services.events import dispatch_event

    event = fire("eve", {"prize": "a kite"}, "k6")
    dispatch_event(event_id=event.pk)
    wait_until(lambda: smtp.count() == 1, timeout=60)
    message = smtp.snapshot()[0]
    assert (message.to, message.subject) == ("eve@example.test", "You won, Eve")
    assert message.body.strip() == "Your prize: a kite (spring)"
    wait_until(lambda: Delivery.objects.filter(status="sent").exists(), timeout=30)

"""A notification template in use is frozen: no edit while a live broadcast or activity sends
it, and never a new code or channel once it has been sent."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction
from django.urls import reverse

from activities.models import Activity
from notifications.models import Broadcast, Delivery, NotificationTemplate
from notifications.services.broadcasts import start_broadcast
from notifications.services.templates import TemplateFrozen, check_template_edit
from tests.factories import ActivityFactory, ChainFactory, CustomerFactory, StepFactory
from tests.notifications.factories import BroadcastFactory, NotificationTemplateFactory

pytestmark = pytest.mark.django_db

IN_USE_BY_BROADCAST = (
    "This template is in use and cannot change until these have finished: broadcast “Spring "
    "sale”. To change the wording now, create a new template."
)
IN_USE_BY_ACTIVITY = (
    "This template is in use and cannot change until these have finished: activity spring. To "
    "change the wording now, create a new template."
)
CHANNEL_FROZEN = (
    "This template has been sent on this channel: it can no longer change. Create a new "
    "template for another channel."
)
CODE_FROZEN = (
    "This template has been sent, and its messages and chains name it by this code: it can no "
    "longer change. Create a new template instead."
)
NEW_BODY = "Dear {{ customer.name }}, summer is here."


@pytest.fixture
def template() -> NotificationTemplate:
    return NotificationTemplateFactory(code="spring-news", name="Spring news")


def edit(client, template: NotificationTemplate, **changes: str):
    """Submit the admin's change form with the template's stored values and `changes`."""
    data = {
        "code": template.code,
        "name": template.name,
        "channel": template.channel,
        "subject": template.subject,
        "body": template.body,
        "fields": "{}",
        "provider_template_id": template.provider_template_id,
        "link": template.link,
        **changes,
    }
    url = reverse("admin:notifications_notificationtemplate_change", args=[template.pk])
    return client.post(url, data)


def form_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


def broadcast_in(state: str, template: NotificationTemplate) -> Broadcast:
    broadcast = BroadcastFactory(name="Spring sale", template=template)
    Broadcast.objects.filter(pk=broadcast.pk).update(state=state)
    return broadcast


def activity_sending(template_code: str, *, state: str, in_a_split: bool = False) -> Activity:
    chain = ChainFactory()
    notify = {"processor": "notify", "config": {"template": template_code}}
    if in_a_split:
        StepFactory(
            chain=chain,
            processor="split",
            config={
                "key": "wording",
                "variants": [
                    {"name": "control", "weight": 1},
                    {"name": "told", "weight": 1, "steps": [notify]},
                ],
            },
        )
    else:
        StepFactory(chain=chain, **notify)
    return ActivityFactory(code="spring", template=chain.template, state=state)


@pytest.mark.parametrize("state", ["scheduled", "sending", "paused"])
def test_a_template_a_live_broadcast_sends_cannot_be_edited(admin_client, template, state):
    broadcast_in(state, template)

    response = edit(admin_client, template, body=NEW_BODY)

    assert form_errors(response) == {"__all__": [IN_USE_BY_BROADCAST]}
    template.refresh_from_db()
    assert template.body == "Dear {{ customer.name }}, spring is here."


@pytest.mark.parametrize("state", ["scheduled", "running", "paused"])
@pytest.mark.parametrize("in_a_split", [False, True], ids=["chain-step", "split-variant"])
def test_a_template_a_live_activity_sends_cannot_be_edited(
    admin_client, template, state, in_a_split
):
    activity_sending("spring-news", state=state, in_a_split=in_a_split)

    response = edit(admin_client, template, subject="Summer, {{ customer.name }}")

    assert form_errors(response) == {"__all__": [IN_USE_BY_ACTIVITY]}
    template.refresh_from_db()
    assert template.subject == "Hello {{ customer.name }}"


@pytest.mark.parametrize("state", ["draft", "ended", "archived"])
def test_an_activity_that_cannot_run_does_not_freeze_the_template(admin_client, template, state):
    activity_sending("spring-news", state=state)

    response = edit(admin_client, template, body=NEW_BODY)

    assert response.status_code == 302
    template.refresh_from_db()
    assert template.body == NEW_BODY


def test_once_its_broadcast_is_over_the_wording_may_change_but_not_the_channel(
    admin_client, template
):
    broadcast_in("completed", template)

    response = edit(admin_client, template, channel="sms", body=NEW_BODY)

    assert form_errors(response) == {"channel": [CHANNEL_FROZEN]}
    response = edit(admin_client, template, body=NEW_BODY)
    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.channel, template.body) == ("email", NEW_BODY)


def test_a_chain_message_sent_from_the_template_freezes_its_code_and_channel(
    admin_client, template
):
    Delivery.objects.create(
        customer=CustomerFactory(),
        channel="email",
        source_key="run:1:step:0",
        rendered={"template": "spring-news", "subject": "Hello", "body": "Hi"},
    )

    response = edit(admin_client, template, code="summer-news", channel="sms")

    assert form_errors(response) == {"code": [CODE_FROZEN], "channel": [CHANNEL_FROZEN]}
    template.refresh_from_db()
    assert (template.code, template.channel) == ("spring-news", "email")


def test_a_template_never_sent_may_change_code_and_channel(admin_client, template):
    NotificationTemplateFactory(code="other")
    Delivery.objects.create(
        customer=CustomerFactory(),
        channel="email",
        source_key="run:1:step:0",
        rendered={"template": "other", "subject": "Hello", "body": "Hi"},
    )

    response = edit(admin_client, template, code="summer-news", channel="sms")

    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.code, template.channel) == ("summer-news", "sms")


def test_the_service_refuses_the_edit_whoever_makes_it(template):
    broadcast_in("sending", template)
    activity_sending("spring-news", state="running")
    Broadcast.objects.create(
        name="Autumn sale", template=template, segment=Broadcast.objects.get().segment
    )

    with pytest.raises(TemplateFrozen) as refused:
        check_template_edit(template_id=template.pk, changed_fields=["channel"])

    assert refused.value.code == "template_in_use"
    assert refused.value.http_status == 409
    assert refused.value.details == [
        {
            "path": "",
            "message": (
                "This template is in use and cannot change until these have finished: "
                "broadcast “Spring sale”, activity spring. To change the wording now, create a "
                "new template."
            ),
            "code": "template_in_use",
        },
        {"path": "channel", "message": CHANNEL_FROZEN, "code": "template_sent"},
    ]
    check_template_edit(template_id=template.pk, changed_fields=[])


@pytest.mark.django_db(transaction=True)
def test_a_broadcast_cannot_start_between_the_check_and_the_save(template):
    """The edit's check holds the template's row until the edit commits; starting a broadcast
    of the template waits for it (here: gives up after its lock timeout)."""
    broadcast = BroadcastFactory(template=template)
    checked = threading.Event()
    done = threading.Event()
    outcome: list[BaseException | None] = []

    def start_while_the_edit_is_open() -> None:
        checked.wait(10)
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '300ms'")
                start_broadcast(broadcast_id=broadcast.pk)
        except BaseException as error:
            outcome.append(error)
        else:
            outcome.append(None)
        finally:
            connection.close()
            done.set()

    starter = threading.Thread(target=start_while_the_edit_is_open)
    starter.start()
    with transaction.atomic():
        check_template_edit(template_id=template.pk, changed_fields=["body"])
        checked.set()
        assert done.wait(10)
        NotificationTemplate.objects.filter(pk=template.pk).update(body=NEW_BODY)
    starter.join()

    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError), outcome
    assert "lock timeout" in str(outcome[0])
    assert Broadcast.objects.get(pk=broadcast.pk).state == "draft"

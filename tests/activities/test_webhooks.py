"""call_webhook: after commit, with the run's idempotency key, retried until a 2xx."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from activities.models import ChainRun
from activities.services.events import accept_event, process_event
from config.celery import app
from tests.factories import (
    ActivityFactory,
    BenefitFactory,
    ChainFactory,
    ChannelFactory,
    StepFactory,
    TemplateFactory,
    make_api_key,
)

pytestmark = pytest.mark.django_db


class Receiver(BaseHTTPRequestHandler):
    calls: list[tuple[str, dict]] = []
    answers: list[int] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Receiver.calls.append((self.headers["Idempotency-Key"], body))
        self.send_response(Receiver.answers.pop(0) if Receiver.answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.calls, Receiver.answers = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/grants"
    server.shutdown()


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_webhook_posts_the_grants_with_the_idempotency_key_after_commit(
    receiver, eager, django_capture_on_commit_callbacks
):
    template = TemplateFactory(code="signup")
    chain = ChainFactory(template=template, channel=ChannelFactory(code="signed.up"))
    StepFactory(chain=chain, position=0, processor="grant_benefit", config={"benefit": "cash"})
    StepFactory(
        chain=chain,
        position=1,
        processor="call_webhook",
        config={"url": receiver, "only_with_grants": True},
    )
    activity = ActivityFactory(code="welcome", template=template, running=True)
    BenefitFactory(activity=activity, code="cash", kind="cash", value="2.00")
    Receiver.answers = [503]  # the first attempt fails; the retry must carry the same key

    event, _ = accept_event(
        client=make_api_key()[0],
        idempotency_key="s1",
        channel_code="signed.up",
        customer_external_id="uma",
        payload={},
    )
    with django_capture_on_commit_callbacks() as callbacks:
        process_event(event_id=event.pk)
    assert Receiver.calls == []  # nothing left before the commit
    run = ChainRun.objects.get(event=event)
    for callback in callbacks:
        callback()
    keys = [key for key, _ in Receiver.calls]
    assert keys == [f"run:{run.pk}:step:1"] * 2
    body = Receiver.calls[-1][1]
    assert body["activity"] == "welcome"
    assert body["customer"] == "uma"
    assert [(g["benefit"], g["quantity"]) for g in body["grants"]] == [("cash", 1)]
    assert body["grants"][0]["idempotency_key"] == f"run:{run.pk}:step:0"

"""No webhook is lost (real Celery worker): a call whose send to the broker failed after the run
committed stays pending, and the sweeper hands it to a worker that delivers it, signed."""

import datetime as dt
import threading
from http.server import ThreadingHTTPServer

import pytest
from django.conf import settings
from kombu.exceptions import OperationalError

from activities import enqueue
from activities.models import WebhookCall
from activities.services import webhooks
from activities.services.events import accept_event, process_event
from config.celery import app
from core.signing import signature
from tests.activities.test_webhooks import Sink, webhook_activity
from tests.conftest import wait_until
from tests.factories import make_api_key

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sink():
    Sink.calls, Sink.answers = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


def test_a_call_whose_send_failed_after_commit_is_swept_and_delivered_by_a_worker(
    sink, make_worker, monkeypatch
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    make_worker(concurrency=2, queues="events,default")

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        # This process runs the event (accepted with the broker down, processed here) and
        # tries to send the call when the run commits: the send fails too.
        patched.setattr(app.tasks[enqueue.RUN_EVENT], "apply_async", broker_down)
        patched.setattr(app.tasks[enqueue.CALL_WEBHOOK], "apply_async", broker_down)
        event, _ = accept_event(
            client=make_api_key()[0],
            idempotency_key="lost-send",
            channel_code="signed.up",
            customer_external_id="uma",
            payload={},
        )
        process_event(event_id=event.pk)
    call = WebhookCall.objects.get()
    assert (call.state, call.attempts, Sink.calls) == ("pending", 0, [])
    assert webhooks.sweep_webhook_calls(overdue_after=dt.timedelta(0)) == 1
    wait_until(lambda: WebhookCall.objects.get().state == "sent", timeout=30)
    call.refresh_from_db()
    assert (call.attempts, call.response_status) == (1, 200)
    [sent] = Sink.calls
    assert sent["headers"]["Idempotency-Key"] == call.idempotency_key
    assert sent["headers"]["X-Gambit-Signature"] == signature(
        secret=settings.GAMBIT_WEBHOOK_SECRET,
        raw=sent["raw"],
        timestamp=int(sent["headers"]["X-Gambit-Timestamp"]),
    )

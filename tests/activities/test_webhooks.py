"""call_webhook through its outbox: a row written with the run and sent, signed, after commit;
retried with backoff under one idempotency key; a dead letter after the last attempt, left alone
by the sweeper and sent again by an operator; a lost send swept and delivered. Targets are
checked when the step is saved and when the call is made, the connection goes to the checked
address, and no redirect is followed."""

import datetime as dt
import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore._backends.sync
import pytest
from celery.exceptions import Retry, SoftTimeLimitExceeded
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from activities import enqueue
from activities.models import ChainRun, WebhookCall
from activities.services import configuration, webhooks
from activities.services.events import accept_event, process_event
from activities.tasks import call_webhook_task
from config.celery import app
from core import webhook_targets
from core.signing import signature
from tests.e2e.scenario import role_user
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


class Sink(BaseHTTPRequestHandler):
    """The receiver: records every call; answers 200 unless told otherwise."""

    calls: list[dict] = []
    answers: list[tuple[int, dict[str, str]]] = []

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        Sink.calls.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
        status, headers = Sink.answers.pop(0) if Sink.answers else (200, {})
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def sink():
    Sink.calls, Sink.answers = [], []
    server = serve(ThreadingHTTPServer(("127.0.0.1", 0), Sink))
    yield server.server_port
    server.shutdown()


@pytest.fixture
def connections(monkeypatch):
    """Every TCP connection an HTTP client opens, as (host, port)."""
    opened = []
    connect = httpcore._backends.sync.SyncBackend.connect_tcp

    def recording(self, host, port, *args, **kwargs):
        opened.append((host, port))
        return connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore._backends.sync.SyncBackend, "connect_tcp", recording)
    return opened


@pytest.fixture
def resolver(monkeypatch):
    table: dict[str, list[str]] = {}
    lookups: list[str] = []

    def resolve(host, port):
        lookups.append(host)
        return table[host]

    monkeypatch.setattr(webhook_targets, "resolve_host", resolve)
    resolve.table, resolve.lookups = table, lookups
    return resolve


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def webhook_activity(url: str) -> None:
    template = TemplateFactory(code="signup")
    chain = ChainFactory(template=template, channel=ChannelFactory(code="signed.up"))
    StepFactory(chain=chain, position=0, processor="grant_benefit", config={"benefit": "cash"})
    StepFactory(
        chain=chain,
        position=1,
        processor="call_webhook",
        config={"url": url, "only_with_grants": True},
    )
    activity = ActivityFactory(code="welcome", template=template, running=True)
    BenefitFactory(activity=activity, code="cash", kind="cash", value="2.00")


def run_event(capture, key: str = "s1") -> list:
    """Accept and process one event; returns the on-commit callbacks, not yet run."""
    event, _ = accept_event(
        client=make_api_key()[0],
        idempotency_key=key,
        channel_code="signed.up",
        customer_external_id="uma",
        payload={},
    )
    with capture() as callbacks:
        process_event(event_id=event.pk)
    return callbacks


def make_due(call: WebhookCall, *, seconds_ago: float = 1) -> None:
    WebhookCall.objects.filter(pk=call.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=seconds_ago)
    )


def test_the_call_is_written_with_the_run_and_sent_signed_after_commit(
    sink, eager, settings, django_capture_on_commit_callbacks
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    callbacks = run_event(django_capture_on_commit_callbacks)
    run = ChainRun.objects.get()
    call = WebhookCall.objects.get()
    assert (call.run_id, call.idempotency_key, call.state, call.attempts) == (
        run.pk,
        f"run:{run.pk}:step:1",
        "pending",
        0,
    )
    assert Sink.calls == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    call.refresh_from_db()
    assert (call.state, call.attempts, call.response_status, call.last_error) == (
        "sent",
        1,
        200,
        "",
    )
    assert call.sent_at is not None
    [sent] = Sink.calls
    headers = sent["headers"]
    assert headers["Idempotency-Key"] == f"run:{run.pk}:step:1"
    assert headers["X-Gambit-Signature"] == signature(
        secret=settings.GAMBIT_WEBHOOK_SECRET,
        raw=sent["raw"],
        timestamp=int(headers["X-Gambit-Timestamp"]),
    )
    body = json.loads(sent["raw"])
    assert (body["activity"], body["customer"], sent["path"]) == ("welcome", "uma", "/grants")
    assert [(g["benefit"], g["quantity"]) for g in body["grants"]] == [("cash", 1)]
    assert body["grants"][0]["idempotency_key"] == f"run:{run.pk}:step:0"


def test_a_failed_attempt_waits_out_its_backoff_then_retries_with_the_same_key(
    sink, eager, django_capture_on_commit_callbacks
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    Sink.answers = [(503, {})]
    started = timezone.now()
    for callback in run_event(django_capture_on_commit_callbacks):
        callback()
    call = WebhookCall.objects.get()
    assert (call.state, call.attempts, call.response_status, call.last_error) == (
        "pending",
        1,
        503,
        "HTTP 503: ok",
    )
    assert 1 <= (call.next_attempt_at - started).total_seconds() <= 4  # the 2 s backoff
    assert webhooks.send_webhook_call(call_id=call.pk) is None  # not due yet: nothing sent
    assert len(Sink.calls) == 1
    make_due(call)
    assert webhooks.send_webhook_call(call_id=call.pk) is None
    call.refresh_from_db()
    assert (call.state, call.attempts, call.last_error) == ("sent", 2, "")
    keys = [sent["headers"]["Idempotency-Key"] for sent in Sink.calls]
    assert keys == [call.idempotency_key] * 2


def test_the_last_failed_attempt_leaves_a_dead_letter_the_sweeper_leaves_alone(
    sink, settings, django_capture_on_commit_callbacks
):
    settings.GAMBIT_WEBHOOK_MAX_ATTEMPTS = 2
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    run_event(django_capture_on_commit_callbacks)
    call = WebhookCall.objects.get()
    Sink.answers = [(503, {}), (502, {})]
    assert webhooks.send_webhook_call(call_id=call.pk) == 2.0
    make_due(call)
    assert webhooks.send_webhook_call(call_id=call.pk) is None
    call.refresh_from_db()
    assert (call.state, call.reason, call.attempts, call.response_status, call.last_error) == (
        "failed",
        "retries_exhausted",
        2,
        502,
        "HTTP 502: ok",
    )
    make_due(call, seconds_ago=3600)
    with django_capture_on_commit_callbacks(execute=True) as swept:
        assert webhooks.sweep_webhook_calls(overdue_after=dt.timedelta(0)) == 0
    assert swept == []
    assert webhooks.send_webhook_call(call_id=call.pk) is None
    assert len(Sink.calls) == 2


def test_an_operator_sees_the_dead_letters_and_sends_them_again(
    client, sink, eager, django_capture_on_commit_callbacks
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    run_event(django_capture_on_commit_callbacks)
    call = WebhookCall.objects.get()
    WebhookCall.objects.filter(pk=call.pk).update(
        state="failed", reason="retries_exhausted", attempts=12, last_error="HTTP 503: down"
    )
    changelist = reverse("admin:activities_webhookcall_changelist")
    client.force_login(role_user("Operator"))
    page = client.get(changelist, {"state__exact": "failed"}).content.decode()
    assert "no success after the last attempt" in page
    assert "HTTP 503: down" in page
    assert 'value="resend"' not in page  # operators look; approvers re-send
    client.force_login(role_user("Approver"))
    page = client.get(changelist, {"state__exact": "failed"}).content.decode()
    assert 'value="resend"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist, {"action": "resend", "_selected_action": [call.pk]}, follow=True
        )
    assert "1 failed call will be sent again." in response.content.decode()
    call.refresh_from_db()
    assert (call.state, call.reason, call.attempts) == ("sent", "", 1)
    assert [sent["headers"]["Idempotency-Key"] for sent in Sink.calls] == [call.idempotency_key]


def test_a_call_whose_send_failed_after_commit_is_swept_and_delivered(
    sink, eager, monkeypatch, django_capture_on_commit_callbacks
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    task = app.tasks[enqueue.CALL_WEBHOOK]

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(task, "apply_async", broker_down)
        for callback in run_event(django_capture_on_commit_callbacks):
            callback()
    call = WebhookCall.objects.get()
    assert (call.state, call.attempts, Sink.calls) == ("pending", 0, [])
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.sweep_webhook_calls(overdue_after=dt.timedelta(0)) == 1
    call.refresh_from_db()
    assert (call.state, call.attempts) == ("sent", 1)
    assert [sent["headers"]["Idempotency-Key"] for sent in Sink.calls] == [call.idempotency_key]


def test_a_claim_whose_worker_died_is_swept_and_sent_again(
    sink, eager, django_capture_on_commit_callbacks
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    run_event(django_capture_on_commit_callbacks)
    call = WebhookCall.objects.get()
    WebhookCall.objects.filter(pk=call.pk).update(
        state="sending", attempts=1, next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert webhooks.send_webhook_call(call_id=call.pk) is None  # held by the dead attempt
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.sweep_webhook_calls(overdue_after=dt.timedelta(0)) == 1
    call.refresh_from_db()
    assert (call.state, call.attempts, len(Sink.calls)) == ("sent", 2, 1)


def test_a_lapsed_claim_on_the_last_attempt_is_a_dead_letter(
    sink, settings, django_capture_on_commit_callbacks
):
    settings.GAMBIT_WEBHOOK_MAX_ATTEMPTS = 3
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    run_event(django_capture_on_commit_callbacks)
    call = WebhookCall.objects.get()
    WebhookCall.objects.filter(pk=call.pk).update(
        state="sending", attempts=3, next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True) as dispatched:
        assert webhooks.sweep_webhook_calls(overdue_after=dt.timedelta(0)) == 1
    assert dispatched == []
    call.refresh_from_db()
    assert (call.state, call.reason, call.attempts, call.last_error) == (
        "failed",
        "retries_exhausted",
        3,
        "The worker making this attempt stopped before it finished.",
    )
    assert Sink.calls == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is 169.254.169.254, a link-local address; "
            "webhooks call public ones only.",
        ),
        (
            "http://127.0.0.1:{port}/grants",
            "127.0.0.1 is 127.0.0.1, a loopback address; webhooks call public ones only.",
        ),
        (
            "http://[::1]:{port}/grants",
            "::1 is ::1, a loopback address; webhooks call public ones only.",
        ),
        (
            "http://10.0.0.1/grants",
            "10.0.0.1 is 10.0.0.1, a private address; webhooks call public ones only.",
        ),
        (
            "http://hooks.partner.example/grants",
            "hooks.partner.example is 10.1.2.3, a private address; webhooks call public ones only.",
        ),
    ],
)
def test_a_call_to_an_address_that_is_not_public_is_refused_before_any_connection(
    sink, settings, connections, resolver, django_capture_on_commit_callbacks, url, error
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    run_event(django_capture_on_commit_callbacks)
    settings.GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    resolver.table["hooks.partner.example"] = ["10.1.2.3"]
    call = WebhookCall.objects.create(
        run=ChainRun.objects.get(), url=url.format(port=sink), body={}, idempotency_key="refused"
    )
    assert webhooks.send_webhook_call(call_id=call.pk) is None
    call.refresh_from_db()
    assert (call.state, call.reason, call.attempts, call.response_status, call.last_error) == (
        "failed",
        "address_refused",
        1,
        None,
        error,
    )
    assert connections == []
    assert Sink.calls == []


def test_a_redirect_is_refused_and_not_followed(
    sink, connections, django_capture_on_commit_callbacks
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    run_event(django_capture_on_commit_callbacks)
    call = WebhookCall.objects.get()
    Sink.answers = [(302, {"Location": "http://169.254.169.254/latest/meta-data/"})]
    assert webhooks.send_webhook_call(call_id=call.pk) is None
    call.refresh_from_db()
    assert (call.state, call.reason, call.response_status, call.last_error) == (
        "failed",
        "redirect_refused",
        302,
        "The receiver answered 302, a redirect to http://169.254.169.254/latest/meta-data/; "
        "webhooks follow no redirect.",
    )
    assert connections == [("127.0.0.1", sink)]
    assert len(Sink.calls) == 1


def test_the_call_connects_to_the_checked_address_with_the_configured_host(
    sink, settings, connections, resolver, django_capture_on_commit_callbacks
):
    settings.GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["hooks.partner.example"]
    resolver.table["hooks.partner.example"] = ["127.0.0.1"]
    webhook_activity(f"http://hooks.partner.example:{sink}/grants")
    run_event(django_capture_on_commit_callbacks)
    call = WebhookCall.objects.get()
    assert webhooks.send_webhook_call(call_id=call.pk) is None
    assert WebhookCall.objects.get().state == "sent"
    assert resolver.lookups == ["hooks.partner.example"]  # resolved once, by the check
    assert connections == [("127.0.0.1", sink)]
    assert Sink.calls[0]["headers"]["Host"] == f"hooks.partner.example:{sink}"


def test_tls_goes_to_the_checked_address_and_verifies_the_configured_host_name(
    tmp_path, settings, connections, resolver, django_capture_on_commit_callbacks
):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=hooks.partner.example", "-keyout", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    server_names = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    serve(server)
    port = server.server_port
    settings.GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["hooks.partner.example"]
    resolver.table["hooks.partner.example"] = ["127.0.0.1"]
    webhook_activity(f"https://hooks.partner.example:{port}/grants")
    run_event(django_capture_on_commit_callbacks)
    call = WebhookCall.objects.get()
    try:
        assert webhooks.send_webhook_call(call_id=call.pk) == 2.0
    finally:
        server.shutdown()
    call.refresh_from_db()
    # The self-signed certificate is refused: verification is on, for the configured name.
    assert call.state == "pending"
    assert "CERTIFICATE_VERIFY_FAILED" in call.last_error
    assert server_names == ["hooks.partner.example"]
    assert connections == [("127.0.0.1", port)]


def test_without_a_signing_secret_nothing_is_sent(
    sink, settings, connections, django_capture_on_commit_callbacks
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    run_event(django_capture_on_commit_callbacks)
    settings.GAMBIT_WEBHOOK_SECRET = ""
    call = WebhookCall.objects.get()
    assert webhooks.send_webhook_call(call_id=call.pk) is None
    call.refresh_from_db()
    assert (call.state, call.reason, connections) == ("failed", "not_configured", [])


def test_an_attempt_stopped_by_the_soft_time_limit_is_retried_later(
    sink, monkeypatch, django_capture_on_commit_callbacks
):
    webhook_activity(f"http://127.0.0.1:{sink}/grants")
    run_event(django_capture_on_commit_callbacks)
    call = WebhookCall.objects.get()

    def slow_receiver(*args, **kwargs):
        raise SoftTimeLimitExceeded

    monkeypatch.setattr(webhooks, "post_to_target", slow_receiver)
    monkeypatch.setattr(call_webhook_task, "retry", lambda countdown: Retry(when=countdown))
    with pytest.raises(Retry) as retry:
        call_webhook_task.run(call.pk)
    assert retry.value.when == 2.0
    call.refresh_from_db()
    assert (call.state, call.attempts, call.last_error) == (
        "pending",
        1,
        "The attempt was stopped by its time limit (30 s).",
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "https://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is 169.254.169.254, a link-local address; "
            "webhooks call public ones only.",
        ),
        (
            "http://hooks.partner.example/",
            "Webhooks must use https: http://hooks.partner.example/.",
        ),
    ],
)
def test_a_step_calling_a_refused_url_cannot_be_saved(settings, url, message):
    settings.GAMBIT_WEBHOOK_ALLOW_HTTP = False  # as in production
    errors = configuration.check_step(processor="call_webhook", config={"url": url}, when=None)
    assert [(e.path, e.code, e.message) for e in errors] == [
        ("config.url", "invalid_config", message)
    ]
    assert (
        configuration.check_step(
            processor="call_webhook", config={"url": "https://hooks.partner.example/"}, when=None
        )
        == []
    )

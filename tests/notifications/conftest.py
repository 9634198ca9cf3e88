"""Providers on loopback for the notification tests: a real SMTP server (aiosmtpd), a stand-in
for the WeChat API and an HTTP sink for SMS and webhooks.

Their ports are chosen when this file is imported (at collection, before any worker starts)
and exported into the environment, so every worker process of the session - the shared
`celery_worker` included - sends to these sinks. The in-process settings get the same values
from the autouse `notification_settings` fixture.
"""

from __future__ import annotations

import asyncio
import email.parser
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SMTP_PORT = _free_port()
HTTP_PORT = _free_port()
HTTP_BASE = f"http://127.0.0.1:{HTTP_PORT}"

TEST_ENV = {
    "NOTIFICATIONS_EMAIL_HOST": "127.0.0.1",
    "NOTIFICATIONS_EMAIL_PORT": str(SMTP_PORT),
    "NOTIFICATIONS_EMAIL_TIMEOUT": "5",
    "NOTIFICATIONS_WECHAT_API_BASE": f"{HTTP_BASE}/wechat",
    "NOTIFICATIONS_WECHAT_APPID": "wx-test-app",
    "NOTIFICATIONS_WECHAT_SECRET": "wx-test-secret",
    "NOTIFICATIONS_SMS_URL": f"{HTTP_BASE}/sms",
    "NOTIFICATIONS_WEBHOOK_URL": f"{HTTP_BASE}/webhook",
    "NOTIFICATIONS_WEBHOOK_SECRET": "hook-secret",
    "NOTIFICATIONS_HTTP_TIMEOUT": "5",
    # No channel-wide ceiling in tests; the rate-limit test sets its broadcast's own.
    "NOTIFICATIONS_RATE_LIMITS": "email=100000;wechat=100000;sms=100000;webhook=100000",
    "NOTIFICATIONS_CLAIM_LEASE_SECONDS": "5",
    "NOTIFICATIONS_CIRCUIT_THRESHOLD": "5",
    "NOTIFICATIONS_CIRCUIT_COOLDOWN_SECONDS": "1",
    "NOTIFICATIONS_RETRY_BASE_SECONDS": "0.2",
    "NOTIFICATIONS_RETRY_MAX_SECONDS": "1",
    "NOTIFICATIONS_PAGE_SIZE": "2000",
}
os.environ.update(TEST_ENV)


@pytest.fixture(autouse=True)
def notification_settings(settings):
    """The same configuration the workers got from the environment, for in-process code."""
    settings.NOTIFICATIONS_EMAIL = {
        **django_settings.NOTIFICATIONS_EMAIL,
        "HOST": "127.0.0.1",
        "PORT": SMTP_PORT,
        "TIMEOUT": 5.0,
    }
    settings.NOTIFICATIONS_WECHAT = {
        **django_settings.NOTIFICATIONS_WECHAT,
        "API_BASE": f"{HTTP_BASE}/wechat",
        "APPID": "wx-test-app",
        "SECRET": "wx-test-secret",
    }
    settings.NOTIFICATIONS_SMS = {"URL": f"{HTTP_BASE}/sms", "TOKEN": "", "SENDER": ""}
    settings.NOTIFICATIONS_WEBHOOK = {"URL": f"{HTTP_BASE}/webhook", "SECRET": "hook-secret"}
    settings.NOTIFICATIONS_HTTP_TIMEOUT = 5.0
    settings.NOTIFICATIONS_RATE_LIMITS = {
        "email": 100000,
        "wechat": 100000,
        "sms": 100000,
        "webhook": 100000,
    }
    settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS = 5
    settings.NOTIFICATIONS_CIRCUIT_THRESHOLD = 5
    settings.NOTIFICATIONS_CIRCUIT_COOLDOWN_SECONDS = 1.0
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 0.2
    settings.NOTIFICATIONS_RETRY_MAX_SECONDS = 1.0
    settings.NOTIFICATIONS_PAGE_SIZE = 2000
    # Circuit breakers, loop leases, rate buckets and cached tokens from an earlier test.
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for pattern in ("notifications:*", "*notifications:wechat*"):
        keys = list(client.scan_iter(pattern, count=1000))
        if keys:
            client.delete(*keys)
    return settings


# --- beat ------------------------------------------------------------------------------------


@pytest.fixture
def sweeper() -> Iterator[None]:
    """What beat does in production: the deliveries sweep every second, in a thread."""
    from django.db import connection

    from notifications.services import sweeper as deliveries_sweeper

    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(1.0):
                deliveries_sweeper.sweep()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


# --- SMTP ------------------------------------------------------------------------------------


@dataclass
class Received:
    message_id: str
    to: str
    subject: str
    body: str
    at: float


class SmtpSink:
    """A real SMTP server on loopback that keeps every message it accepts.

    It stamps each message when its event loop gets to it; `max_lag` is how late that loop
    ran since the last `clear()` (a starved test process stamps a backlog all at once), so a
    timing assertion can tell the sink's own delay from the senders'.
    """

    LAG_PROBE_SECONDS = 0.01

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.controller: Controller | None = None
        self.parser = email.parser.BytesParser()
        self.max_lag = 0.0

    async def _probe_lag(self) -> None:
        while True:
            expected = time.monotonic() + self.LAG_PROBE_SECONDS
            await asyncio.sleep(self.LAG_PROBE_SECONDS)
            self.max_lag = max(self.max_lag, time.monotonic() - expected)

    async def handle_DATA(self, server, session, envelope) -> str:
        at = time.time()
        parsed = self.parser.parsebytes(envelope.content)
        body = parsed.get_payload(decode=True) or b""
        received = Received(
            message_id=parsed.get("Message-ID", ""),
            to=",".join(envelope.rcpt_tos),
            subject=str(parsed.get("Subject", "")),
            body=body.decode("utf-8", "replace"),
            at=at,
        )
        with self.lock:
            self.messages.append(received)
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        asyncio.run_coroutine_threadsafe(self._probe_lag(), self.controller.loop)
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
        self.max_lag = 0.0

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def by_recipient(self) -> Counter:
        return Counter(message.to for message in self.snapshot())

    def distinct(self) -> dict[str, Received]:
        """Messages by Message-ID, as a receiver that dedupes on it keeps them: a resend of the
        same delivery (same Message-ID) is one message."""
        return {message.message_id: message for message in self.snapshot()}


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink(SMTP_PORT).start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp(smtp_server: SmtpSink) -> Iterator[SmtpSink]:
    if smtp_server.controller is None:
        smtp_server.start()
    smtp_server.clear()
    yield smtp_server
    if smtp_server.controller is None:
        smtp_server.start()


# --- HTTP: WeChat API, SMS and webhook sink ----------------------------------------------------


@dataclass
class HttpSink:
    """Answers the WeChat API by openid and records every call (path, headers, JSON body)."""

    calls: list[dict] = field(default_factory=list)
    token_requests: int = 0
    token: str = "token-1"
    # openid -> remaining 45009 answers before it succeeds
    busy: dict[str, int] = field(default_factory=dict)
    # tokens the API will refuse (40001) as expired
    expired_tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fail_status: int | None = None

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.token_requests = 0
            self.token = "token-1"
            self.busy.clear()
            self.expired_tokens.clear()
            self.fail_status = None

    def wechat_answer(self, token: str, body: dict) -> dict:
        with self.lock:
            if token in self.expired_tokens:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            openid = body.get("touser", "")
            if openid.startswith("refused"):
                return {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
            if openid.startswith("invalid"):
                return {"errcode": 40003, "errmsg": "invalid openid"}
            if self.busy.get(openid, 0) > 0:
                self.busy[openid] -= 1
                return {"errcode": 45009, "errmsg": "reach max api daily quota limit"}
            return {"errcode": 0, "errmsg": "ok", "msgid": 1000 + len(self.calls)}


def _handler(sink: HttpSink):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            url = urlparse(self.path)
            with sink.lock:
                sink.calls.append(
                    {
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "headers": dict(self.headers),
                        "body": body,
                        "raw": raw,
                    }
                )
                fail_status = sink.fail_status
            if fail_status is not None:
                self._answer(fail_status, {"error": "down"})
            elif url.path == "/wechat/cgi-bin/stable_token":
                with sink.lock:
                    sink.token_requests += 1
                    if body.get("force_refresh") or sink.token in sink.expired_tokens:
                        sink.token = f"token-{sink.token_requests}"
                    token = sink.token
                self._answer(200, {"access_token": token, "expires_in": 7200})
            elif url.path == "/wechat/cgi-bin/message/subscribe/send":
                token = parse_qs(url.query).get("access_token", [""])[0]
                self._answer(200, sink.wechat_answer(token, body))
            else:
                self._answer(200, {"id": f"msg-{len(sink.calls)}"})

        def _answer(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture(scope="session")
def http_server() -> Iterator[HttpSink]:
    sink = HttpSink()
    server = ThreadingHTTPServer(("127.0.0.1", HTTP_PORT), _handler(sink))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sink
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_sink(http_server: HttpSink) -> HttpSink:
    http_server.reset()
    return http_server

"""A broadcast's live progress bar in the browser moves to 100% while it sends.

An approver presses "Send now" in the admin; the test then plays the workers' part in-process
(plan the segment, send batch after batch to a webhook sink on loopback) while the page polls,
so the bar is seen part-way and then full.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifications.models import Broadcast, BroadcastState, NotificationTemplate
from notifications.services import broadcasts
from notifications.services.planning import plan_next_page
from notifications.services.sending import send_batch
from segments.models import Customer
from tests.e2e.scenario import login, role_user
from tests.notifications.factories import make_segment

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
WIDTH = "parseFloat(document.querySelector('#notif-live .notif-progress-bar').style.width)"


class Sink(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Sink.received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook_sink(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Sink.received = []
    settings.NOTIFICATIONS_WEBHOOK = {
        **settings.NOTIFICATIONS_WEBHOOK,
        "URL": f"http://127.0.0.1:{server.server_port}/hook",
        "SECRET": "e2e",
    }
    yield Sink
    server.shutdown()


def bar_width(page) -> float:
    return float(
        page.locator("#notif-live .notif-progress-bar").evaluate("el => el.style.width").rstrip("%")
        or 0
    )


def test_broadcast_progress_bar_reaches_100(new_page, shot, webhook_sink):
    ids = [Customer.objects.create(external_id=f"fan-{i}", name=f"粉丝{i}").pk for i in range(6)]
    template = NotificationTemplate.objects.create(
        code="spring-hello", name="春季问候", channel="webhook", body="你好 {{ customer.name }}"
    )
    broadcast = Broadcast.objects.create(
        name="春季通知", template=template, segment=make_segment(ids, code="fans"), batch_size=2
    )
    role_user("Approver", "arthur")
    page = new_page("zh-hans")
    login(page, "arthur")
    page.goto(f"/admin/notifications/broadcast/{broadcast.pk}/change/")
    page.click("[data-action=start]")
    page.click("[data-action=confirm]")  # "Send now" asks first, with the audience size
    page.wait_for_selector(".messagelist .success")
    broadcast.refresh_from_db()
    assert broadcast.state == BroadcastState.SENDING

    while plan_next_page(broadcast_id=broadcast.pk) == "more":
        pass
    send_batch(broadcast_id=broadcast.pk)
    page.wait_for_function(
        f"() => {{ const w = {WIDTH}; return w > 0 && w < 100; }}", timeout=15_000
    )
    shot(page, "part-way")
    part_way = bar_width(page)

    while send_batch(broadcast_id=broadcast.pk).claimed:
        pass
    broadcasts.complete_if_done(broadcast_id=broadcast.pk)
    page.wait_for_function(f"() => {WIDTH} === 100", timeout=15_000)
    shot(page, "done")
    broadcast.refresh_from_db()
    assert 0 < part_way < 100
    assert (broadcast.state, broadcast.planned, broadcast.sent) == (BroadcastState.COMPLETED, 6, 6)
    assert sorted(r.get("customer") for r in webhook_sink.received) == [
        f"fan-{i}" for i in range(6)
    ]

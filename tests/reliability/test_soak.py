"""The chaos soak: mixed load under worker kills, Redis restarts and cut PostgreSQL sessions,
then a reconciliation that must find nothing lost and nothing done twice. Check-ins run a chain
that also calls a webhook (the WebhookCall outbox) and notifies the customer by email, each to
a local sink.

CI mode runs 120 s; `GAMBIT_SOAK_SECONDS=600` is the long mode (at least 20 worker kills and 2
Redis restarts). Writes its mode's section of docs/reliability.md, pass or fail.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from activities.models import ChainRun, Event
from tests.conftest import ROOT, Worker, wait_until
from tests.factories import (
    ActivityFactory,
    BenefitFactory,
    ChainFactory,
    ChannelFactory,
    StepFactory,
    TemplateFactory,
    build_quiz_lottery,
    make_api_key,
)
from tests.integration.conftest import free_port
from tests.notifications.factories import (
    BroadcastFactory,
    NotificationTemplateFactory,
    make_customers,
    make_segment,
)

from . import reconcile
from .faults import KILL_DURING_REDIS_RESTART, Chaos
from .load import LoadLog, Storefront
from .report import artifact, table, write_section

SOAK_SECONDS = int(os.environ.get("GAMBIT_SOAK_SECONDS", "120"))
MODE = "long" if SOAK_SECONDS >= 600 else "ci"
EVENT_THREADS = 3
EVENTS_PER_THREAD_PER_SECOND = 3.5
ORDERS_PER_SECOND = 1.0
CUSTOMERS = [f"soak-c-{i}" for i in range(200)]
# The broadcast spans most of the soak: this many deliveries per soak second, paced to ~60%.
DELIVERIES_PER_SECOND_OF_SOAK = 12
DRAIN_TIMEOUT = 300
# The activity whose chain also calls a webhook and notifies the customer.
HOOKED = "soak-stamps"

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


# --- the world ------------------------------------------------------------------------------


def activity_on(code: str, channel: str, benefit: dict, *, quantity: int = 1, steps=(), **fields):
    """Grant, then `steps` ((processor, config) pairs), then build the result."""
    template = TemplateFactory(code=f"{code}-template")
    chain = ChainFactory(template=template, channel=ChannelFactory(code=channel))
    StepFactory(
        chain=chain,
        position=0,
        processor="grant_benefit",
        config={"benefit": benefit["code"], "quantity": quantity},
    )
    for position, (processor, config) in enumerate(steps, start=1):
        StepFactory(chain=chain, position=position, processor=processor, config=config)
    StepFactory(chain=chain, position=len(steps) + 1, processor="build_result")
    activity = ActivityFactory(code=code, template=template, running=True, **fields)
    BenefitFactory(activity=activity, **benefit)
    return activity


def build_world(hook_url: str) -> dict[str, set[str]]:
    """Four running activities; returns the activities bound to each channel. Check-ins stamp,
    call the webhook and email the customer (the storefront's customers, with an address)."""
    make_customers(len(CUSTOMERS), prefix="soak-c")
    NotificationTemplateFactory(
        code="soak-stamp-mail",
        channel="email",
        subject="A stamp for {{ customer.name }}",
        body="{{ activity.code }}: one more stamp.",
    )
    activity_on(
        HOOKED,
        "soak.checkin",
        {"code": "stamp", "kind": "points"},
        steps=[("call_webhook", {"url": hook_url}), ("notify", {"template": "soak-stamp-mail"})],
    )
    activity_on(
        "soak-coupons",
        "soak.checkin",
        {
            "code": "soak-coupon",
            "kind": "coupon",
            "stock_total": 100_000,
            "per_customer_limit": 1,
            "value": "5.00",
        },
        budget_total="100000.00",
        budget_remaining="100000.00",
    )
    build_quiz_lottery(code="soak-lottery", prize_stock=10, coupon_stock=100_000)
    activity_on(
        "soak-orders", "order.paid", {"code": "order-points", "kind": "points"}, quantity=10
    )
    for channel in ("order.shipped", "order.completed", "order.refunded", "order.cancelled"):
        ChannelFactory(code=channel)
    return {
        "soak.checkin": {"soak-stamps", "soak-coupons"},
        "quiz.completed": {"soak-lottery"},
        "lottery.draw": {"soak-lottery"},
        "order.paid": {"soak-orders"},
    }


def build_broadcast(size: int, rate: int) -> int:
    ids = make_customers(size, prefix="soak-b")
    template = NotificationTemplateFactory(
        code="soak-webhook", channel="webhook", subject="", body="Hi {{ customer.name }}"
    )
    broadcast = BroadcastFactory(
        template=template,
        segment=make_segment(ids, code="soak-audience"),
        batch_size=100,
        rate_limit=rate,
        pause_after_errors=1_000_000,
    )
    return broadcast.pk


class Sink:
    """The webhook provider: counts every message it receives by delivery id."""

    def __init__(self) -> None:
        self.received: Counter = Counter()
        # call_webhook POSTs, by Idempotency-Key (how the receiver dedupes them).
        self.calls: Counter = Counter()
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/call":
                    key = self.headers["Idempotency-Key"]
                    with sink.lock:
                        sink.calls[key] += 1
                    data = json.dumps({"ok": key}).encode()
                else:
                    with sink.lock:
                        sink.received[body["delivery"]] += 1
                    data = json.dumps({"id": f"m-{body['delivery']}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def call_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/call"

    def snapshot(self) -> Counter:
        with self.lock:
            return Counter(self.received)

    def calls_snapshot(self) -> Counter:
        with self.lock:
            return Counter(self.calls)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def smtp_sink():
    """The notification tests' aiosmtpd sink, on a port of its own. Importing their conftest
    exports their provider settings into os.environ: put it back, so the stack's environment
    stays the soak's own."""
    saved = dict(os.environ)
    from tests.notifications.conftest import SmtpSink

    os.environ.clear()
    os.environ.update(saved)
    return SmtpSink(free_port()).start()


def start_broadcast(stack, broadcast_id: int) -> None:
    """Through the notification services, in a process configured like the stack (its tasks
    must reach the soak's own broker)."""
    code = (
        "import django; django.setup()\n"
        "from notifications.models import Broadcast\n"
        "from notifications.services.broadcasts import start_broadcast\n"
        f"if Broadcast.objects.get(pk={broadcast_id}).state == 'draft':\n"
        f"    start_broadcast(broadcast_id={broadcast_id})\n"
    )
    for _ in range(5):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=stack.env(),
            capture_output=True,
            check=False,
        )
        if result.returncode == 0:
            return
        time.sleep(1)
    raise AssertionError(result.stderr.decode()[-2000:])


# --- the soak -----------------------------------------------------------------------------


@pytest.mark.timeout(SOAK_SECONDS + DRAIN_TIMEOUT + 240)
def test_chaos_soak_loses_nothing(start_stack, redis_server):
    rng = random.Random(int(os.environ.get("GAMBIT_SOAK_SEED", str(int(time.time())))))
    sink = Sink()
    smtp = smtp_sink()
    bound = build_world(sink.call_url)
    deliveries = DELIVERIES_PER_SECOND_OF_SOAK * SOAK_SECONDS
    broadcast_id = build_broadcast(
        deliveries, rate=max(1, round(deliveries / (0.6 * SOAK_SECONDS)))
    )
    _, raw_key = make_api_key(name="soak")
    overrides = {
        "CELERY_BROKER_URL": redis_server.url,
        "REDIS_URL": redis_server.url,
        # Workers and web keep their database sessions, as deployed: the session cuts below
        # then prove a broken session is dropped and replaced, not reused.
        "DJANGO_CONN_MAX_AGE": "60",
        "GAMBIT_SWEEP_INTERVAL": "1",
        "GAMBIT_SWEEP_AFTER_SECONDS": "5",
        "GAMBIT_API_RATES": "events=1000000/min;customers=1000000/min;orders=1000000/min;"
        "broadcasts=1000000/min",
        "NOTIFICATIONS_WEBHOOK_URL": sink.url,
        "NOTIFICATIONS_WEBHOOK_SECRET": "",
        "NOTIFICATIONS_EMAIL_HOST": "127.0.0.1",
        "NOTIFICATIONS_EMAIL_PORT": str(smtp.port),
        "NOTIFICATIONS_EMAIL_TIMEOUT": "5",
        # The call_webhook outbox (target, http and secret come from the test settings).
        "GAMBIT_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
        "GAMBIT_WEBHOOK_RETRY_MAX_SECONDS": "5",
        "GAMBIT_WEBHOOK_TIMEOUT_SECONDS": "5",
        "NOTIFICATIONS_RATE_LIMITS": "email=100000;wechat=100000;sms=100000;webhook=100000",
        "NOTIFICATIONS_SWEEP_INTERVAL": "1",
        "NOTIFICATIONS_CLAIM_LEASE_SECONDS": "5",
        "NOTIFICATIONS_RETRY_BASE_SECONDS": "0.2",
        "NOTIFICATIONS_RETRY_MAX_SECONDS": "2",
        "NOTIFICATIONS_CIRCUIT_COOLDOWN_SECONDS": "1",
        "NOTIFICATIONS_HTTP_TIMEOUT": "5",
    }
    stack = start_stack(env_overrides=overrides, beat=True)
    second = Worker(concurrency=2, env_overrides=overrides).start()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    db = connection.settings_dict
    chaos = Chaos(
        workers=[stack.worker, second],
        redis_server=redis_server,
        dsn=f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres",
        database=db["NAME"],
        spared_pids={own_pid},
        rng=rng,
    )
    log = LoadLog()
    storefront = Storefront(base_url=stack.base_url, key=raw_key, log=log, customers=CUSTOMERS)
    try:
        started = time.monotonic()
        deadline = started + SOAK_SECONDS
        threads = [chaos.start(start_after=5.0, deadline=deadline)]
        for _index in range(EVENT_THREADS):
            threads.append(
                _thread(
                    storefront.fire_events,
                    rate=EVENTS_PER_THREAD_PER_SECOND,
                    deadline=deadline,
                    seed=rng.random(),
                )
            )
        threads.append(
            _thread(
                storefront.move_orders,
                rate=ORDERS_PER_SECOND,
                deadline=deadline,
                seed=rng.random(),
                prefix="soak-o",
            )
        )
        time.sleep(3)
        start_broadcast(stack, broadcast_id)
        for thread in threads:
            thread.join()
        load_ended = time.monotonic()
        backlog = reconcile.open_work(broadcast_id)
        # Whatever the last fault left: every worker up, Redis up (as a supervisor would).
        for worker in (stack.worker, second):
            if worker.process is None or worker.process.poll() is not None:
                worker.start()
        beat_alive = all(process.poll() is None for process in stack.processes)
        drained = _drain(broadcast_id)
        drain_seconds = time.monotonic() - load_ended
        figures, violations = _reconcile(log, bound, broadcast_id, sink, smtp)
    finally:
        second.stop()
        sink.close()
        smtp.stop()
    figures.update(
        soak_seconds=SOAK_SECONDS,
        load_seconds=round(load_ended - started, 1),
        drain_seconds=round(drain_seconds, 1),
        backlog=backlog,
        drained=drained,
        processes_alive_after=beat_alive,
    )
    _write_report(chaos, log, figures, violations)
    assert not chaos.log.errors, chaos.log.errors
    assert drained, f"work still open after {DRAIN_TIMEOUT}s: {reconcile.open_work(broadcast_id)}"
    assert not violations, violations[:20]
    assert log.accepted, "the soak accepted no event"
    if MODE == "long":
        assert chaos.log.counts.get("worker SIGKILL", 0) >= 20
        assert chaos.log.counts.get("Redis restart", 0) >= 2
    assert chaos.log.counts.get(KILL_DURING_REDIS_RESTART, 0) >= 1


def _thread(target, **kwargs) -> threading.Thread:
    thread = threading.Thread(target=target, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def _drain(broadcast_id: int) -> bool:
    try:
        wait_until(
            lambda: not any(reconcile.open_work(broadcast_id).values()),
            timeout=DRAIN_TIMEOUT,
            interval=1.0,
        )
    except AssertionError:
        return False
    return True


def _reconcile(log: LoadLog, bound, broadcast_id: int, sink: Sink, smtp):
    violations: list[str] = []
    figures: dict = {}
    for check in (
        lambda: reconcile.check_events(log, bound),
        lambda: reconcile.check_orders(log, bound),
        lambda: reconcile.check_grants(log),
        lambda: reconcile.check_deliveries(broadcast_id, sink.snapshot()),
        lambda: reconcile.check_webhook_calls(HOOKED, sink.calls_snapshot()),
        lambda: reconcile.check_notify(
            HOOKED, Counter(message.message_id for message in smtp.snapshot())
        ),
    ):
        found, numbers = check()
        violations.extend(found)
        figures.update(numbers)
    if log.given_up:
        violations.append(f"{len(log.given_up)} calls never got an answer: {log.given_up[:3]}")
    figures["events_total"] = Event.objects.count()
    figures["runs_total"] = ChainRun.objects.count()
    figures.update(reconcile.event_attempts())
    return figures, violations


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _write_report(chaos: Chaos, log: LoadLog, figures: dict, violations: list[str]) -> None:
    seconds = figures["load_seconds"]
    lost = "nothing" if not violations else f"{len(violations)} violations (below)"
    fault_rows = []
    for fault in chaos.faults:
        took = chaos.log.seconds.get(fault.name, [])
        detail = f" ({chaos.log.sessions_cut} sessions)" if "PostgreSQL" in fault.name else ""
        fault_rows.append(
            (
                fault.name,
                f"{chaos.log.counts.get(fault.name, 0)}{detail}",
                f"every {fault.every[0]:.0f}-{fault.every[1]:.0f} s",
                f"{statistics.median(took):.1f} s" if took else "-",
                lost,
            )
        )
    statuses = log.statuses
    answers = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    load_rows = [
        (
            "events accepted",
            f"{figures['events_accepted']} ({figures['events_accepted'] / seconds:.1f}/s)",
        ),
        ("same-key replays (must return the same event)", log.replays),
        ("orders / confirmed transitions", f"{figures['orders']} / {figures['order_transitions']}"),
        ("chain runs (incl. order events)", figures["runs_total"]),
        ("run outcomes for accepted events", _fmt(figures["runs_by_outcome"])),
        ("grants issued", figures["grants"]),
        ("scarce stock taken (granted / initial)", _fmt(figures["stock"])),
        (
            "broadcast deliveries planned / sent / at the sink",
            f"{figures['planned']} / {figures['sent']} / {figures['at_sink_distinct']}",
        ),
        (
            "webhook resends after kills (receiver dedupes by idempotency key)",
            figures["at_sink_resends"],
        ),
        (
            "webhook calls (call_webhook) / sent / at the sink",
            f"{figures['webhook_calls']} / {figures['webhook_sent']} / "
            f"{figures['webhook_at_sink_distinct']}",
        ),
        (
            "webhook call resends at the sink (deduped by Idempotency-Key) / calls retried",
            f"{figures['webhook_resends']} / {figures['webhook_retried_calls']}",
        ),
        (
            "notify emails queued / sent / at the SMTP sink",
            f"{figures['notify_messages']} / {figures['notify_sent']} / "
            f"{figures['notify_at_sink_distinct']}",
        ),
        ("notify email resends at the SMTP sink (same Message-ID)", figures["notify_resends"]),
        (
            "events processed more than once (attempts >= 2; most attempts)",
            f"{figures['events_attempts_2_plus']} ({figures['events_attempts_max']})",
        ),
        ("HTTP answers by status", answers),
        ("calls without an answer (connection refused/reset), retried", log.connection_errors),
        ("calls that succeeded only after a retry", log.retried_calls),
        ("API latency p50 / p95 / p99", _latency(log.latencies)),
        (
            "still open when the load stopped (events / deliveries / emails / webhook calls)",
            f"{figures['backlog']['events']} / {figures['backlog']['deliveries']} / "
            f"{figures['backlog']['messages']} / {figures['backlog']['webhook_calls']}",
        ),
        ("drain after the load stopped", f"{figures['drain_seconds']} s"),
    ]
    reconciliation = [
        ("accepted events ran exactly once per bound activity", figures["events_accepted"]),
        ("confirmed order transitions raised one event each", figures["order_transitions"]),
        (
            "stamps == check-ins, one coupon per customer, points == paid orders",
            figures["orders_paid"],
        ),
        ("granted + remaining == initial (stock and budget)", len(figures["stock"]) + 1),
        ("every planned delivery sent and at the sink", figures["planned"]),
        (
            "one webhook call per stamp grant, sent, at the sink, received <= attempts",
            figures["webhook_grants"],
        ),
        (
            "one notify email per stamp grant, sent, at the SMTP sink, received <= attempts",
            figures["notify_messages"],
        ),
    ]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = "CI mode" if MODE == "ci" else "Long mode"
    body = "\n\n".join(
        [
            f"## {title}: {SOAK_SECONDS} s of faults (run {when})",
            "### Faults injected",
            table(fault_rows, ("fault", "injected", "how often", "time per injection", "lost")),
            "### Load held",
            table(load_rows, ("load", "over the soak")),
            "### Reconciliation",
            table(
                [
                    (promise, n, "0" if not violations else "see below")
                    for promise, n in reconciliation
                ],
                ("promise", "items checked", "violations"),
            ),
            "Violations: "
            + ("none." if not violations else "\n" + "\n".join(f"- {v}" for v in violations[:50])),
        ]
    )
    write_section(MODE, body)
    artifact(f"soak-{MODE}.json").write_text(
        json.dumps(
            {
                "faults": chaos.log.counts,
                "sessions_cut": chaos.log.sessions_cut,
                "fault_errors": chaos.log.errors,
                "figures": figures,
                "statuses": dict(statuses),
                "violations": violations,
                "given_up": log.given_up,
            },
            indent=2,
            default=str,
        )
    )


def _fmt(mapping: dict) -> str:
    return ", ".join(
        f"{k}: {v[0]}/{v[1]}" if isinstance(v, tuple) else f"{k}: {v}"
        for k, v in sorted(mapping.items())
    )


def _latency(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    return " / ".join(f"{_percentile(values, q) * 1000:.0f} ms" for q in (50, 95, 99))

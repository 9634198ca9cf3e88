"""Issue 4 benchmark: a broadcast to N customers (default 1,000,000).

1. Planning: Delivery rows/s of the real planner (one INSERT ... SELECT ... ON CONFLICT DO
   NOTHING per page, every skip rule in SQL), beside a plain PostgreSQL COPY of the same number
   of rows into a table with the same columns and indexes, in the same run.
2. Sending: messages/s through real Celery workers (2 processes, claims, rate-limit buckets,
   outcome flushes) to a zero-latency sink (Django's dummy email backend).
3. Worker peak RSS (VmHWM of every worker process) at 100,000 and at N customers.
4. Naive baseline over 10,000 customers: one query and one synchronous send per customer.
5. Isolation: p99 of `POST /api/v1/events/` with `Prefer: wait` (gunicorn, a worker on the
   `events` queue) while the N-customer broadcast sends on its own workers, beside the same p99
   idle.

Usage: .venv/bin/python tests/benchmarks/bench_broadcast.py [--customers 1000000]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DB_NAME = "gambit_bench_broadcast"
# A Redis database of its own: workers of another test run on the same database would take
# this benchmark's tasks (the script refuses to start if any worker answers there).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "tests.benchmarks.settings",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "NOTIFICATIONS_EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    "NOTIFICATIONS_RATE_LIMITS": "email=1000000000",
    "DJANGO_LOG_LEVEL": "ERROR",
}
os.environ.update(BENCH_ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from core.redis_pools import redis_client  # noqa: E402
from notifications.backends import Message, get_backend  # noqa: E402
from notifications.models import Broadcast, Delivery, NotificationTemplate  # noqa: E402
from notifications.services import planning, sending  # noqa: E402
from segments.models import Customer, Segment  # noqa: E402

WORKER_PROCESSES = 2
# The Procfile runs the senders at this niceness: storefront work wins the CPU.
SENDER_NICENESS = int(os.environ.get("BENCH_SENDER_NICENESS", "10"))
# The isolation is measured at the default email rate (settings), a faster one, and unlimited.
ISOLATION_RATES = "200,1000,none"


def check_no_foreign_workers() -> None:
    from config.celery import app

    if answering := app.control.ping(timeout=1.0):
        raise SystemExit(
            f"Workers already consume {REDIS_URL}: {answering}. Set BENCH_REDIS_URL to a free "
            "Redis database."
        )


def reset_database() -> None:
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB_NAME], check=True
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)
    call_command("migrate", verbosity=0)
    redis_client(url=REDIS_URL).flushdb()


def make_customers(count: int) -> None:
    """N customers in one INSERT ... SELECT generate_series; every one consents to email. The
    first 100,000 have level "first", the rest "rest", so a segment can take the first ones."""
    values = {
        "external_id": "'b-' || g",
        "name": "'Customer ' || g",
        "email": "'b-' || g || '@example.test'",
        "email_consent": "true",
        "level": "CASE WHEN g <= 100000 THEN 'first' ELSE 'rest' END",
    }
    columns, expressions = [], []
    for field in Customer._meta.concrete_fields:
        if field.primary_key or (field.null and field.name not in values):
            continue
        columns.append(field.column)
        if field.name in values:
            expressions.append(values[field.name])
        elif field.get_internal_type() == "JSONField":
            expressions.append("'[]'::jsonb" if field.default is list else "'{}'::jsonb")
        elif field.get_internal_type() == "BooleanField":
            expressions.append("false")
        elif field.get_internal_type() == "DateTimeField":
            expressions.append("now()")
        else:
            expressions.append("''")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Customer._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(expressions)} FROM generate_series(1, %s) AS g",
            [count],
        )
        cursor.execute(f"ANALYZE {Customer._meta.db_table}")


def make_broadcast(
    segment: Segment, template: NotificationTemplate, name: str, frequency_cap: int | None = 3
) -> Broadcast:
    broadcast = Broadcast.objects.create(
        name=name,
        template=template,
        segment=segment,
        batch_size=1000,
        frequency_cap=frequency_cap,
    )
    now = timezone.now()
    Broadcast.objects.filter(pk=broadcast.pk).update(
        state="sending", started_at=now, sending_since=now
    )
    return Broadcast.objects.get(pk=broadcast.pk)


def plan(broadcast: Broadcast) -> float:
    started = time.perf_counter()
    while planning.plan_next_page(broadcast_id=broadcast.pk) == "more":
        pass
    return time.perf_counter() - started


def copy_same_rows(count: int) -> float:
    """COPY `count` rows shaped like deliveries into a table with the same indexes."""
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(
            f"CREATE TABLE bench_copy (LIKE {table} INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
    now = timezone.now().isoformat()
    buffer = io.StringIO()
    for i in range(1, count + 1):
        buffer.write(
            f"{i}\t1\t{i}\temail\tb-{i}@example.test\tqueued\t\t\t0\t\\N\t\\N\t\\N\t\t\t\\N\tt"
            f"\t{now}\t{now}\n"
        )
    data = buffer.getvalue().encode()
    columns = (
        "id, broadcast_id, customer_id, channel, address, status, reason, error, attempts, "
        "next_attempt_at, claimed_at, sent_at, provider_message_id, source_key, rendered, "
        "counts_toward_cap, created_at, updated_at"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY bench_copy ({columns}) FROM STDIN") as copy:
            for offset in range(0, len(data), 1 << 20):
                copy.write(data[offset : offset + (1 << 20)])
        cursor.execute("SELECT count(*) FROM bench_copy")
        assert cursor.fetchone()[0] == count
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy")
    return elapsed


def start_workers(
    queues: str = "events,fanout,sends,default",
    extra_nodes: int = 0,
    nice: int = 0,
    extra_env: dict[str, str] | None = None,
) -> list[subprocess.Popen]:
    """WORKER_PROCESSES workers on `queues`; waits until they and `extra_nodes` others answer."""
    env = {**os.environ, **BENCH_ENV, **(extra_env or {})}
    workers = []
    for index in range(WORKER_PROCESSES):
        workers.append(
            subprocess.Popen(
                [
                    *(["nice", "-n", str(nice)] if nice else []),
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    queues,
                    "-c",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-l",
                    "ERROR",
                    "-n",
                    f"bench-broadcast-{index}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    from config.celery import app

    deadline = time.monotonic() + 60
    while len(app.control.ping(timeout=0.5)) < WORKER_PROCESSES + extra_nodes:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
    return workers


def worker_pids(workers: list[subprocess.Popen]) -> list[int]:
    pids = [worker.pid for worker in workers]
    for worker in workers:
        children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children")
        if children.exists():
            pids += [int(pid) for pid in children.read_text().split()]
    return pids


def peak_rss_mb(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak / 1024


def send(broadcast: Broadcast) -> tuple[float, float]:
    """Hand the planned broadcast to fresh workers; returns (seconds, peak worker RSS MB)."""
    from notifications.services import dispatch

    workers = start_workers()
    pids = worker_pids(workers)
    started = time.perf_counter()
    dispatch.ensure_senders(broadcast.pk)
    while True:
        state = Broadcast.objects.values_list("state", flat=True).get(pk=broadcast.pk)
        if state != "sending":
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    rss = peak_rss_mb(pids)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=60)
    return elapsed, rss


def naive(template: NotificationTemplate, count: int) -> float:
    """What a synchronous loop does: fetch each customer, render, send, one at a time."""
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[:count])
    backend = get_backend("email")
    started = time.perf_counter()
    with backend.open() as session:
        for customer_id in ids:
            customer = Customer.objects.get(pk=customer_id)
            message = sending.compose(
                template=template,
                data=sending.broadcast_data(customer, Broadcast(name="naive")),
                delivery_id=customer_id,
                address=customer.email,
                customer=customer.external_id,
                broadcast_id=None,
            )
            session.send(Message(**{**message.__dict__}))
    return time.perf_counter() - started


def event_latencies(client, url: str, key: str, count: int) -> list[float]:
    """`count` events one after another, each waiting for its chain's result."""
    import uuid

    latencies = []
    for i in range(count):
        started = time.perf_counter()
        response = client.post(
            url,
            json={"channel": "bench.ping", "customer": f"b-{i + 1}", "payload": {"n": i}},
            headers={
                "Authorization": f"Api-Key {key}",
                "Idempotency-Key": uuid.uuid4().hex,
                "Prefer": "wait=10",
            },
        )
        assert response.status_code == 200, response.text
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def p99(values: list[float]) -> float:
    import statistics

    return statistics.quantiles(values, n=100)[98]


def ping_activity() -> str:
    """A running one-step activity on `bench.ping` and an API key for it; returns the key."""
    from activities.models import Activity, Chain, ChainStep, Channel
    from activities.models import StrategyTemplate as Gameplay
    from core.models import StorefrontKey

    channel, _ = Channel.objects.get_or_create(code="bench.ping")
    gameplay = Gameplay.objects.create(code="bench-ping", name="ping")
    chain = Chain.objects.create(template=gameplay, channel=channel, requires_lock=True)
    ChainStep.objects.create(chain=chain, position=0, processor="build_result", config={})
    now = timezone.now()
    activity = Activity.objects.create(
        code="bench-ping",
        name="ping",
        template=gameplay,
        starts_at=now - timezone.timedelta(days=1),
        ends_at=now + timezone.timedelta(days=1),
    )
    Activity.objects.filter(pk=activity.pk).update(state="running")
    return StorefrontKey.objects.create_key(name="bench", scopes=["events"])[1]


def isolation(
    segment: Segment, template: NotificationTemplate, events: int, key: str, rate: int | None
) -> dict[str, float]:
    """Latency (ms) of `Prefer: wait` events idle, then while the broadcast sends on its own
    (niced) workers at `rate` messages/s (None: as fast as they can)."""
    import statistics

    import httpx

    from notifications.services import broadcasts, dispatch

    # No frequency cap: the samples' broadcasts all reach the same million customers, and
    # each must still be sending when its sample ends.
    broadcast = make_broadcast(segment, template, f"bench isolation {rate}", frequency_cap=None)
    plan(broadcast)
    env = {**os.environ, **BENCH_ENV}
    stack = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                "127.0.0.1:18766",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "events,default",
                "-c",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "ERROR",
                "-n",
                "bench-events@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    senders = start_workers(
        "fanout,sends",
        extra_nodes=1,
        nice=SENDER_NICENESS,
        extra_env={"NOTIFICATIONS_RATE_LIMITS": f"email={rate or 1_000_000_000}"},
    )
    url = "http://127.0.0.1:18766/api/v1/events/"
    with httpx.Client(timeout=30, limits=httpx.Limits(keepalive_expiry=1)) as client:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get("http://127.0.0.1:18766/health/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        event_latencies(client, url, key, 20)  # warm up
        idle = event_latencies(client, url, key, events)
        dispatch.ensure_senders(broadcast.pk)
        time.sleep(2)
        sent_before = Broadcast.objects.values_list("sent", flat=True).get(pk=broadcast.pk)
        started = time.perf_counter()
        busy = event_latencies(client, url, key, events)
        sent = Broadcast.objects.values_list("sent", flat=True).get(pk=broadcast.pk) - sent_before
        send_rate = sent / (time.perf_counter() - started)
    for process in [*stack, *senders]:
        process.terminate()
    for process in [*stack, *senders]:
        process.wait(timeout=60)
    # Leave nothing for the next measurement's workers: the broadcast paused, its queued
    # batch tasks and rate-limit buckets gone.
    broadcasts.pause_broadcast(broadcast_id=broadcast.pk)
    redis_client(url=REDIS_URL).flushdb()
    return {
        "idle_p50": statistics.median(idle),
        "idle_p99": p99(idle),
        "busy_p50": statistics.median(busy),
        "busy_p99": p99(busy),
        "send_rate": send_rate,
    }


def print_isolation(
    segment: Segment, template: NotificationTemplate, events: int, total: int, rates: str
) -> None:
    key = ping_activity()
    print(
        f"\nisolation: `Prefer: wait` events (ms) idle, then during the {total:,} broadcast "
        f"(senders at nice {SENDER_NICENESS})"
    )
    print(
        "| send rate limit | msgs/s sent meanwhile | idle p50 / p99 | busy p50 / p99 | p99 ratio |"
    )
    print("| --- | --- | --- | --- | --- |")
    for rate in (None if text == "none" else int(text) for text in rates.split(",")):
        r = isolation(segment, template, events, key, rate)
        label = f"{rate:,}/s" if rate else "none"
        print(
            f"| {label} | {r['send_rate']:,.0f} | {r['idle_p50']:.0f} / {r['idle_p99']:.0f} | "
            f"{r['busy_p50']:.0f} / {r['busy_p99']:.0f} | {r['busy_p99'] / r['idle_p99']:.2f}x |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=300, help="events per isolation sample")
    parser.add_argument(
        "--isolation-only", action="store_true", help="skip planning, sending and naive figures"
    )
    parser.add_argument(
        "--rates",
        default=ISOLATION_RATES,
        help="email rate limits (msgs/s, or none) to measure the isolation at, comma-separated",
    )
    args = parser.parse_args()
    total = args.customers
    check_no_foreign_workers()
    reset_database()
    print(f"creating {total:,} customers ...", flush=True)
    started = time.perf_counter()
    make_customers(total)
    print(f"  {time.perf_counter() - started:.1f} s", flush=True)
    segment = Segment.objects.create(
        code="bench",
        name="bench",
        kind=Segment.Kind.DYNAMIC,
        rule={"all": [{"field": "customer.level", "op": "in", "value": ["first", "rest"]}]},
    )
    template = NotificationTemplate.objects.create(
        code="bench",
        name="bench",
        channel="email",
        subject="Hello {{ customer.name }}",
        body="Dear {{ customer.name }}, this is message {{ broadcast.name }}.",
    )
    sizes = [] if args.isolation_only else sorted({min(100_000, total), total})
    rows = []
    for size in sizes:
        if size != total:
            subset = Segment.objects.create(
                code="bench-first",
                name="first 100,000",
                kind=Segment.Kind.DYNAMIC,
                rule={"all": [{"field": "customer.level", "op": "eq", "value": "first"}]},
            )
        else:
            subset = segment
        broadcast = make_broadcast(subset, template, f"bench {size}")
        plan_seconds = plan(broadcast)
        copy_seconds = copy_same_rows(size)
        broadcast.refresh_from_db()
        assert broadcast.planned == size, broadcast.planned
        print(
            f"[{size:,}] planned {size / plan_seconds:,.0f} rows/s ({plan_seconds:.1f} s); "
            f"COPY {size / copy_seconds:,.0f} rows/s ({copy_seconds:.1f} s)",
            flush=True,
        )
        send_seconds, rss = send(broadcast)
        broadcast.refresh_from_db()
        assert (broadcast.state, broadcast.sent) == ("completed", size), (
            broadcast.state,
            broadcast.sent,
        )
        print(
            f"[{size:,}] sent {size / send_seconds:,.0f} messages/s ({send_seconds:.1f} s); "
            f"worker peak RSS {rss:.0f} MB",
            flush=True,
        )
        rows.append((size, size / plan_seconds, size / copy_seconds, size / send_seconds, rss))
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {Delivery._meta.db_table} WHERE broadcast_id = %s",
                [broadcast.pk],
            )
            cursor.execute(f"VACUUM ANALYZE {Delivery._meta.db_table}")
    if args.isolation_only:
        print_isolation(segment, template, args.events, total, args.rates)
        return
    naive_count = min(10_000, total)
    naive_seconds = naive(template, naive_count)
    naive_rate = naive_count / naive_seconds
    print(f"naive: {naive_rate:,.0f} messages/s over {naive_count:,} customers", flush=True)
    print()
    print("| customers | planning rows/s | COPY rows/s | send msgs/s | worker peak RSS |")
    print("| --- | --- | --- | --- | --- |")
    for size, plan_rate, copy_rate, send_rate, rss in rows:
        print(
            f"| {size:,} | {plan_rate:,.0f} | {copy_rate:,.0f} | {send_rate:,.0f} | {rss:.0f} MB |"
        )
    print(
        f"\nnaive loop: {naive_rate:,.0f} msgs/s; pipeline at {rows[-1][0]:,}: "
        f"{rows[-1][3] / naive_rate:.1f}x"
    )
    print_isolation(segment, template, args.events, total, args.rates)


if __name__ == "__main__":
    main()

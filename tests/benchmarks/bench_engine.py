"""Issue 2 benchmarks.

1. Events per second through the whole path (HTTP -> Event row -> Celery -> 5-step lottery
   chain -> grant) beside a bare path (same gunicorn and worker: one insert, a no-op task),
   the CPU each path costs the machine per event (by process: gunicorn, Celery, PostgreSQL,
   Redis, this script), and p50/p99 latency of `Prefer: wait`.
2. The price of no-code: chain runs per second in-process, the lottery chain from its stored
   configuration beside a hand-written function doing the same reads and writes; queries per run.

Usage: .venv/bin/python tests/benchmarks/bench_engine.py [--events 2000] [--runs 2000]
"""

import argparse
import collections
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DB_NAME = "gambit_bench"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.benchmarks.settings")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Q  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from core.db.compiled_queries import CompiledQuery  # noqa: E402
from core.redis_pools import redis_client  # noqa: E402

ROUNDS = 4
CHAIN = [
    ("rule_check", {"all": [{"field": "event.score", "op": "gte", "value": 10}]}),
    ("participation_limit", {"key": "draws", "per": "day", "limit": 1_000_000}),
    ("set_context", {"values": {"source": {"field": "event.source"}}}),
    ("lottery_draw", {"prizes": [{"benefit": "coupon", "weight": 1}], "fallback": None}),
    ("build_result", {}),
]


def reset_database() -> None:
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB_NAME], check=True
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_bare (id bigserial PRIMARY KEY, body bytea)")


def build_activity(code: str):
    from activities.models import Activity, Benefit, Chain, ChainStep, Channel, StrategyTemplate

    channel, _ = Channel.objects.get_or_create(code="bench.draw")
    template = StrategyTemplate.objects.create(code=f"{code}-template", name=code)
    chain = Chain.objects.create(template=template, channel=channel, requires_lock=True)
    for position, (processor, config) in enumerate(CHAIN):
        ChainStep.objects.create(chain=chain, position=position, processor=processor, config=config)
    now = timezone.now()
    activity = Activity.objects.create(
        code=code,
        name=code,
        template=template,
        starts_at=now - timezone.timedelta(days=1),
        ends_at=now + timezone.timedelta(days=1),
    )
    Activity.objects.filter(pk=activity.pk).update(state="running")
    Benefit.objects.create(
        activity=activity,
        code="coupon",
        kind="coupon",
        stock_total=10_000_000,
        stock_remaining=10_000_000,
    )
    return Activity.objects.get(pk=activity.pk)


class Stack:
    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []
        self.base_url = "http://127.0.0.1:18765"

    def start(self) -> None:
        env = dict(os.environ)
        log = open(ROOT / "test-artifacts" / "bench-stack.log", "ab")  # noqa: SIM115
        self.processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi",
                    "--bind",
                    "127.0.0.1:18765",
                    "--workers",
                    "2",
                    "--threads",
                    "8",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        )
        self.processes.append(
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
                    "2",
                    "-l",
                    "ERROR",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base_url}/api/v1/activities/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        time.sleep(3)  # let the worker connect

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=20)


def fire_many(client: httpx.Client, url: str, bodies: list[dict], headers_for) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(
            pool.map(
                lambda i: client.post(url, json=bodies[i], headers=headers_for(i)),
                range(len(bodies)),
            )
        )
    refused = [(r.status_code, r.text[:200]) for r in responses if r.status_code >= 300]
    if refused:
        raise RuntimeError(f"{len(refused)} requests to {url} were refused: {refused[:3]}")
    return started


def wait_for(predicate, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(0.02)
    raise TimeoutError


ROLES = ("gunicorn", "celery", "postgres", "redis", "driver")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_by_role() -> collections.Counter:
    """CPU time (user + system) used so far by every process on the machine, summed by role;
    `driver` is this script (it sends the requests). The bench runs alone, so the difference
    between two readings is what one phase cost the machine."""
    totals: collections.Counter = collections.Counter()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmd:
                fields = stat.read().rsplit(")", 1)[1].split()
                command = cmd.read().decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        if int(pid) == os.getpid():
            role = "driver"
        else:
            role = next((name for name in ROLES[:4] if name in command), "other")
        totals[role] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return totals


def bench_http(events: int) -> dict:
    from activities.models import Event
    from core.models import StorefrontKey

    _, raw = StorefrontKey.objects.create_key(name="bench", scopes=["events"])
    stack = Stack()
    stack.start()
    counter = redis_client()
    counter.delete("gambit:bench:bare-done")
    results = {}
    try:
        with httpx.Client(
            base_url=stack.base_url,
            timeout=60,
            headers={"Authorization": f"Api-Key {raw}"},
            # gunicorn drops a connection idle for 2 s; never reuse one that old.
            limits=httpx.Limits(keepalive_expiry=1),
        ) as client:
            # Warm both paths (first requests import views, first tasks open connections).
            fire_many(client, "/bench/bare/", [{"n": -1}] * 20, lambda i: {})
            fire_many(
                client,
                "/api/v1/events/",
                [
                    {
                        "channel": "bench.draw",
                        "customer": "warm",
                        "payload": {"score": 50, "source": "warm"},
                    }
                ]
                * 20,
                lambda i: {"Idempotency-Key": uuid.uuid4().hex},
            )
            wait_for(
                lambda: (
                    int(counter.get("gambit:bench:bare-done") or 0) >= 20
                    and Event.objects.filter(state="done").count() >= 20
                )
            )
            counter.delete("gambit:bench:bare-done")
            warm_events = Event.objects.count()
            bare_time = full_time = 0.0
            bare_cpu: collections.Counter = collections.Counter()
            full_cpu: collections.Counter = collections.Counter()
            per_round = events // ROUNDS
            for round_number in range(ROUNDS):
                bodies = [{"n": i} for i in range(per_round)]
                target = per_round * (round_number + 1)
                cpu_before = cpu_seconds_by_role()
                started = fire_many(client, "/bench/bare/", bodies, lambda i: {})
                done = wait_for(
                    lambda target=target: int(counter.get("gambit:bench:bare-done") or 0) >= target
                )
                bare_time += done - started
                bare_cpu.update(cpu_seconds_by_role() - cpu_before)

                bodies = [
                    {
                        "channel": "bench.draw",
                        "customer": f"c{i % 500}",
                        "payload": {"score": 50, "source": "bench"},
                    }
                    for i in range(per_round)
                ]
                cpu_before = cpu_seconds_by_role()
                started = fire_many(
                    client,
                    "/api/v1/events/",
                    bodies,
                    lambda i: {"Idempotency-Key": uuid.uuid4().hex},
                )
                # Every request has been answered, so every event exists: the round is over
                # when none is left unfinished. This reads the small partial index of unfinished
                # events, not a count over the table, so the polling costs PostgreSQL next to
                # nothing (as the bare side's Redis counter does).
                done = wait_for(
                    lambda: not Event.objects.filter(state__in=["pending", "running"]).exists()
                )
                full_time += done - started
                full_cpu.update(cpu_seconds_by_role() - cpu_before)
                done_events = Event.objects.filter(state="done").count()
                if done_events != target + warm_events:
                    raise RuntimeError(f"{done_events} events done, {target + warm_events} sent")
            results["bare_per_s"] = per_round * ROUNDS / bare_time
            results["full_per_s"] = per_round * ROUNDS / full_time
            results["bare_cpu_ms"] = {r: bare_cpu[r] * 1000 / (per_round * ROUNDS) for r in ROLES}
            results["full_cpu_ms"] = {r: full_cpu[r] * 1000 / (per_round * ROUNDS) for r in ROLES}

            latencies = []
            for i in range(200):
                t0 = time.perf_counter()
                response = client.post(
                    "/api/v1/events/",
                    json={
                        "channel": "bench.draw",
                        "customer": f"w{i}",
                        "payload": {"score": 50, "source": "wait"},
                    },
                    headers={"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=10"},
                )
                latencies.append((time.perf_counter() - t0) * 1000)
                assert response.json()["status"] == "done", response.text
            results["wait_p50_ms"] = statistics.median(latencies)
            results["wait_p99_ms"] = statistics.quantiles(latencies, n=100)[98]
    finally:
        stack.stop()
    return results


def handwritten_run(event_id, activity, coupon) -> None:
    """The same reads and writes as the configured chain, written by hand: what a developer
    would write for this one campaign, as a task that receives an event id. It uses the data
    access the engine uses (precompiled queries, single-statement writes where the engine has
    them) and counts its run and grant as the engine does, so the comparison prices the
    configuration alone."""
    from activities.models import ChainRun, Grant, Participation
    from activities.selectors import benefit_balances, event_to_process, runnable_activities
    from activities.services.counters import LimitPeriod, try_increment
    from core.db.rows import insert_or_lock, save_columns
    from core.metrics import record_grant, record_run

    with transaction.atomic():
        event = event_to_process(event_id=event_id)
        if event.state == "done":
            return
        runnable_activities(channel_id=event.channel_id, activity_id=None)
        with transaction.atomic():
            run = insert_or_lock(
                ChainRun,
                unique=("event_id", "activity_id"),
                event_id=event.pk,
                activity_id=activity.pk,
                customer_id=event.customer_id,
            )
            insert_or_lock(
                Participation,
                unique=("activity_id", "customer_id"),
                activity_id=activity.pk,
                customer_id=event.customer_id,
            )
            ok = event.payload["score"] >= 10
            ok = ok and try_increment(
                activity_id=activity.pk,
                customer_id=event.customer_id,
                key="draws",
                per=LimitPeriod.DAY,
                limit=1_000_000,
                now=timezone.now(),
                timezone_name=activity.timezone,
            )
            source = event.payload.get("source")
            key = f"run:{run.pk}:step:3"
            HELD_GRANTS.instances(key=key, benefit_id=coupon.pk, customer_id=event.customer_id)
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE activities_benefit SET stock_remaining = stock_remaining - 1 "
                    "WHERE id = %s AND stock_remaining >= 1 RETURNING stock_remaining",
                    [coupon.pk],
                )
            grant = Grant.objects.create(
                benefit_id=coupon.pk,
                activity_id=activity.pk,
                customer_id=event.customer_id,
                run_id=run.pk,
                idempotency_key=key,
                quantity=1,
                remaining=1,
            )
            record_grant(kind="coupon", quantity=1)
            balances = benefit_balances(activity_id=activity.pk, customer_id=event.customer_id)
            run.outcome = "granted"
            run.result = {
                "granted": [{"benefit": "coupon", "quantity": grant.quantity}],
                "balances": balances,
                "source": source,
            }
            run.finished_at = timezone.now()
            save_columns(run, "outcome", "result", "finished_at")
            record_run(outcome="granted", seconds=0.0)
        event.finish()
        event.finished_at = timezone.now()
        save_columns(event, "state", "finished_at", "error")


def _held_grants(key, benefit_id, customer_id):
    from activities.models import Grant

    return Grant.objects.filter(
        Q(idempotency_key=key) | Q(benefit_id=benefit_id, customer_id=customer_id, state="issued")
    )[:2]


HELD_GRANTS = CompiledQuery(_held_grants, key=str, benefit_id=int, customer_id=int)


def make_events(n: int, prefix: str):
    from activities.models import Channel, Event
    from core.models import StorefrontKey
    from segments.models import Customer

    client = StorefrontKey.objects.create_key(name=prefix, scopes=["events"])[0]
    channel = Channel.objects.get(code="bench.draw")
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"{prefix}-{i}") for i in range(n)
    )
    return Event.objects.bulk_create(
        Event(
            client=client,
            idempotency_key=f"{prefix}-{i}",
            request_hash="",
            channel=channel,
            customer=customer,
            payload={"score": 50, "source": "bench"},
            dispatched_at=timezone.now(),
        )
        for i, customer in enumerate(customers)
    )


def bench_in_process(runs: int) -> dict:
    """Configured and hand-written runs interleaved one by one, so load from anything else on
    the machine falls on both alike."""
    from activities.models import Activity
    from activities.services.events import process_event

    configured = build_activity("configured")
    handwritten = build_activity("handwritten")
    # Both activities listen on the same channel: give each its own so each run does one.
    from activities.models import Chain, Channel

    Chain.objects.filter(template=handwritten.template).update(
        channel=Channel.objects.create(code="bench.draw-by-hand")
    )
    coupon = handwritten.benefits.get(code="coupon")
    configured_events = make_events(runs, "cfg")
    handwritten_events = make_events(runs, "hand")

    process_event(event_id=configured_events[0].pk)  # warm the compiled-chain cache
    handwritten_run(handwritten_events[0].pk, handwritten, coupon)
    with CaptureQueriesContext(connection) as queries:
        process_event(event_id=configured_events[1].pk)
    configured_queries = len(queries)
    with CaptureQueriesContext(connection) as queries:
        handwritten_run(handwritten_events[1].pk, handwritten, coupon)
    handwritten_queries = len(queries)

    configured_time = handwritten_time = 0.0
    for configured_event, handwritten_event in zip(
        configured_events[2:], handwritten_events[2:], strict=True
    ):
        started = time.perf_counter()
        process_event(event_id=configured_event.pk)
        middle = time.perf_counter()
        handwritten_run(handwritten_event.pk, handwritten, coupon)
        handwritten_time += time.perf_counter() - middle
        configured_time += middle - started
    Activity.objects.filter(pk__in=[configured.pk, handwritten.pk]).update(state="ended")
    return {
        "configured_per_s": (runs - 2) / configured_time,
        "handwritten_per_s": (runs - 2) / handwritten_time,
        "configured_queries": configured_queries,
        "handwritten_queries": handwritten_queries,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    reset_database()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()

    in_process = bench_in_process(args.runs)
    build_activity("http")
    http = bench_http(args.events)

    ratio_http = http["full_per_s"] / http["bare_per_s"]
    ratio_chain = in_process["configured_per_s"] / in_process["handwritten_per_s"]
    print(f"full path      {http['full_per_s']:8.1f} events/s")
    print(f"bare path      {http['bare_per_s']:8.1f} events/s")
    print(f"ratio          {ratio_http:8.2f}   (target >= 0.5)")
    print(f"Prefer: wait   p50 {http['wait_p50_ms']:.1f} ms   p99 {http['wait_p99_ms']:.1f} ms")
    print("CPU per event (core-ms)  " + "  ".join(f"{role:>8}" for role in (*ROLES, "total")))
    for path in ("full", "bare"):
        spent = http[f"{path}_cpu_ms"]
        cells = "  ".join(f"{spent[role]:8.2f}" for role in ROLES)
        print(f"  {path} path              {cells}  {sum(spent.values()):8.2f}")
    print(
        f"configured     {in_process['configured_per_s']:8.1f} runs/s  "
        f"{in_process['configured_queries']} queries/run"
    )
    print(
        f"hand-written   {in_process['handwritten_per_s']:8.1f} runs/s  "
        f"{in_process['handwritten_queries']} queries/run"
    )
    print(f"ratio          {ratio_chain:8.2f}   (target >= 0.8)")


if __name__ == "__main__":
    main()

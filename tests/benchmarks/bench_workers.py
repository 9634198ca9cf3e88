"""Events per second through the full path with one Celery worker process, then with two.

The full path of bench_engine.py (HTTP -> Event row -> Celery on queue `events` -> the 5-step
lottery chain -> grant), with the same gunicorn (2 workers x 8 threads) and settings, against
`celery worker -c 1` and `celery worker -c 2` in turn. Measurements alternate (1, 2, 1, 2, ...)
and gunicorn stays up throughout, so anything else running on the machine falls on both sides.
Each measurement also records how busy the whole machine's CPUs were and how much CPU the
Celery worker used per event, because other sessions share this host.

Usage: .venv/bin/python tests/benchmarks/bench_workers.py [--events 800] [--rounds 3]
(about 1.5 minutes with the defaults; longer when other work shares the machine).
"""

import argparse
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DB_NAME = "gambit_bench_workers"
# A Redis database of its own: another run's workers on the same database would take these
# tasks (the script refuses to start if any worker answers there).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "tests.benchmarks.settings",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
}
os.environ.update(BENCH_ENV)

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from config.celery import app  # noqa: E402
from core.redis_pools import redis_client  # noqa: E402

WEB_PORT = 18766
CONCURRENCIES = (1, 2)
WARM_EVENTS = 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CHAIN = [
    ("rule_check", {"all": [{"field": "event.score", "op": "gte", "value": 10}]}),
    ("participation_limit", {"key": "draws", "per": "day", "limit": 1_000_000}),
    ("set_context", {"values": {"source": {"field": "event.source"}}}),
    ("lottery_draw", {"prizes": [{"benefit": "coupon", "weight": 1}], "fallback": None}),
    ("build_result", {}),
]


def reset_database() -> None:
    for command in ("dropdb", "createdb"):
        extra = ["--if-exists"] if command == "dropdb" else []
        subprocess.run([command, "-h", "127.0.0.1", "-U", "postgres", *extra, DB_NAME], check=True)
    call_command("migrate", verbosity=0)


def build_lottery_activity() -> None:
    from activities.models import Activity, Benefit, Chain, ChainStep, Channel, StrategyTemplate

    channel = Channel.objects.create(code="bench.draw")
    template = StrategyTemplate.objects.create(code="workers-template", name="workers")
    chain = Chain.objects.create(template=template, channel=channel, requires_lock=True)
    for position, (processor, config) in enumerate(CHAIN):
        ChainStep.objects.create(chain=chain, position=position, processor=processor, config=config)
    now = timezone.now()
    activity = Activity.objects.create(
        code="workers",
        name="workers",
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


def spawn(args: list[str]) -> subprocess.Popen:
    log = (ROOT / "test-artifacts" / "bench-workers.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, env={**os.environ}, stdout=log, stderr=log
    )


def start_web() -> subprocess.Popen:
    web = spawn(
        ["gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{WEB_PORT}", "--workers", "2",
         "--threads", "8"]
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{WEB_PORT}/api/v1/activities/", timeout=1)
            return web
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s (test-artifacts/bench-workers.log)")


def start_worker(concurrency: int) -> subprocess.Popen:
    node = f"bench-workers-c{concurrency}-{os.getpid()}@{socket.gethostname()}"
    worker = spawn(
        ["celery", "-A", "config", "worker", "-Q", "events,default", "-c", str(concurrency),
         "-n", node, "-l", "ERROR", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[node], timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker -c {concurrency} did not answer within 60 s")
    return worker


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)


def cpu_seconds_of_tree(pid: int) -> float:
    """CPU time (user + system) of a process and its children, e.g. a Celery worker and its
    prefork children."""
    total = 0.0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def machine_cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of every CPU since boot."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def unfinished_events() -> bool:
    from activities.models import Event

    return Event.objects.filter(state__in=["pending", "running"]).exists()


def fire_and_drain(client: httpx.Client, count: int, customer_prefix: str) -> float:
    """Sends `count` draw events (16 at a time) and returns the seconds from the first request
    until no event is left unfinished."""

    def fire(i: int) -> None:
        response = client.post(
            "/api/v1/events/",
            json={
                "channel": "bench.draw",
                "customer": f"{customer_prefix}{i % 500}",
                "payload": {"score": 50, "source": "bench"},
            },
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        if response.status_code >= 300:
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(fire, range(count)))
    deadline = time.monotonic() + 300
    while unfinished_events():
        if time.monotonic() > deadline:
            raise TimeoutError("events still unfinished after 300 s")
        time.sleep(0.02)
    return time.perf_counter() - started


def measure(client: httpx.Client, concurrency: int, events: int) -> dict:
    worker = start_worker(concurrency)
    try:
        fire_and_drain(client, WARM_EVENTS, "warm")  # first tasks open connections, compile
        busy_before, total_before = machine_cpu_ticks()
        worker_cpu_before = cpu_seconds_of_tree(worker.pid)
        seconds = fire_and_drain(client, events, f"c{concurrency}-")
        worker_cpu = cpu_seconds_of_tree(worker.pid) - worker_cpu_before
        busy_after, total_after = machine_cpu_ticks()
    finally:
        stop(worker)
    return {
        "seconds": seconds,
        "machine_busy": (busy_after - busy_before) / (total_after - total_before),
        "worker_cpu_ms": worker_cpu * 1000 / events,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=800, help="events per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per concurrency")
    args = parser.parse_args()
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    if answering := app.control.ping(timeout=1.0):
        raise SystemExit(f"Workers already consume {REDIS_URL}: {answering}. Set BENCH_REDIS_URL.")
    redis_client().flushdb()
    reset_database()
    build_lottery_activity()
    from core.models import StorefrontKey

    _, raw_key = StorefrontKey.objects.create_key(name="bench-workers", scopes=["events"])
    load_before = os.getloadavg()
    web = start_web()
    results: dict[int, list[dict]] = {concurrency: [] for concurrency in CONCURRENCIES}
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{WEB_PORT}",
            timeout=60,
            headers={"Authorization": f"Api-Key {raw_key}"},
            # gunicorn drops a connection idle for 2 s; never reuse one that old.
            limits=httpx.Limits(keepalive_expiry=1),
        ) as client:
            for _ in range(args.rounds):
                for concurrency in CONCURRENCIES:
                    results[concurrency].append(measure(client, concurrency, args.events))
    finally:
        stop(web)
    load_after = os.getloadavg()

    print(
        f"{os.cpu_count()} CPUs; load average (1/5/15 min) before "
        f"{' '.join(f'{x:.2f}' for x in load_before)}, after "
        f"{' '.join(f'{x:.2f}' for x in load_after)}"
    )
    rates = {}
    for concurrency, samples in results.items():
        rates[concurrency] = args.events * len(samples) / sum(s["seconds"] for s in samples)
        per_sample = " / ".join(f"{args.events / s['seconds']:.1f}" for s in samples)
        busy = " / ".join(f"{s['machine_busy']:.0%}" for s in samples)
        cpu = " / ".join(f"{s['worker_cpu_ms']:.2f}" for s in samples)
        print(
            f"celery -c {concurrency}: {rates[concurrency]:7.1f} events/s ({per_sample}); "
            f"machine CPU busy {busy}; worker CPU per event {cpu} core-ms"
        )
    print(f"ratio -c 2 / -c 1: {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()

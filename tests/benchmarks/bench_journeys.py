"""Waiting runs at scale: N runs resumed by the beat sweep, due spread over one minute and all
in the same second, against the same resumes fired as Celery countdown tasks (one per run);
the storefront's `Prefer: wait` latency while they resume against idle; the worker's memory
with N and with a million waiting.

The stack is the Procfile's shape: gunicorn (2 workers, 8 threads) and one Celery worker on
`events,default` with `-c 3`, so sweeps and storefront events share the worker's slots (the
sweep takes at most GAMBIT_JOURNEY_SWEEPERS of them). A thread sends the sweep task every
second (beat with GAMBIT_JOURNEY_SWEEP_INTERVAL=1). The journey: wait 1 minute -> one point,
which the sweep resumes set-based. A client thread fires a storefront event with
`Prefer: wait=10` every 50 ms (a chain that grants one point) and times each answer.

Printed: resumes/s (runs resumed / seconds from the first due time to the last resume), the
lag of each resume behind its due time (p50, p99, max), the worker's peak RSS (main process and
children), storage per waiting run, `Prefer: wait` p50/p99 idle and during each resume, and
each figure beside the countdown baseline or the idle figure with their ratio.

Usage: BENCH_JOURNEYS_N=100000 .venv/bin/python tests/benchmarks/bench_journeys.py
(default N 20,000). The same-second runs and BENCH_JOURNEYS_WAITING (1,000,000) waiting a day
out during them are clones of the first N (other activities of the same journey, the same
customers and events), written by SQL. The baseline's sends take
up to N / 100 s; it is watched for BENCH_JOURNEYS_BASELINE_SECONDS (120) past its due time, and if
unfinished its rate is what it resumed by then and its lags are lower bounds (printed with >=).
BENCH_JOURNEYS_BASELINE_N (N) sends fewer countdown tasks. GAMBIT_JOURNEY_SWEEPERS set here
reaches the worker.
"""

import datetime as dt
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DB_NAME = "gambit_bench_journeys"
REDIS_URL = os.environ.get("BENCH_JOURNEYS_REDIS_URL", "redis://127.0.0.1:6379/11")
N = int(os.environ.get("BENCH_JOURNEYS_N", "20000"))
WAITING = int(os.environ.get("BENCH_JOURNEYS_WAITING", "1000000"))
BASELINE_N = int(os.environ.get("BENCH_JOURNEYS_BASELINE_N", str(N)))
BASELINE_SECONDS = float(os.environ.get("BENCH_JOURNEYS_BASELINE_SECONDS", "120"))
WEB_PORT = 18766
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
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from psycopg import sql  # noqa: E402

from activities.models import Activity, ChainRun, WaitingRun, WaitState  # noqa: E402
from config.celery import app  # noqa: E402
from core.redis_pools import redis_client  # noqa: E402
from tests.benchmarks.journey_tasks import RESUME_ONE  # noqa: E402
from tests.factories import BenefitFactory, make_api_key  # noqa: E402
from tests.journeys.builders import (  # noqa: E402
    build_journey,
    build_points_journey,
    make_waiting_runs,
)

SWEEP = "activities.tasks.resume_due_waits_task"
FAR = dt.timedelta(days=1)
STOREFRONT_CHANNEL = "page.viewed"


def reset_database() -> None:
    for command in ("dropdb", "createdb"):
        extra = ["--if-exists"] if command == "dropdb" else []
        subprocess.run([command, "-h", "127.0.0.1", "-U", "postgres", *extra, DB_NAME], check=True)
    call_command("migrate", verbosity=0)


class Stack:
    """gunicorn and one Celery worker, the Procfile's shape."""

    def __init__(self) -> None:
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def start(self) -> None:
        if app.control.ping(timeout=1):
            raise SystemExit(f"A Celery worker already answers on {REDIS_URL}; stop it first.")
        redis_client().flushdb()
        log = (ROOT / "test-artifacts" / "bench-journeys.log").open("ab")
        env = {**os.environ, **BENCH_ENV}
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{WEB_PORT}",
             "--workers", "2", "--threads", "8"],
            cwd=ROOT, env=env, stdout=log, stderr=log,
        )  # fmt: skip
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "events,default",
             "-c", "3", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "ERROR"],
            cwd=ROOT, env=env, stdout=log, stderr=log,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline:
                raise SystemExit("The worker did not start.")
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{WEB_PORT}/api/v1/activities/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start.") from None
                time.sleep(0.2)

    def worker_rss_mb(self) -> float:
        """Resident memory of the worker's main process and its pool children."""
        assert self.worker is not None
        pids = [self.worker.pid]
        children = Path(f"/proc/{self.worker.pid}/task/{self.worker.pid}/children")
        pids += [int(pid) for pid in children.read_text().split()]
        total_kb = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        return total_kb / 1024

    def stop(self) -> None:
        for process in (self.worker, self.web):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Sampler:
    """While running: the worker's peak RSS, and `Prefer: wait` latencies of storefront
    events fired every 50 ms (none when `fire` is False)."""

    def __init__(self, stack: Stack, api_key: str, *, fire: bool) -> None:
        self.stack = stack
        self.api_key = api_key
        self.fire = fire
        self.stop_flag = threading.Event()
        self.peak_rss = 0.0
        self.latencies: list[float] = []
        self.unanswered = 0
        self.p99 = 0.0
        self.threads = [threading.Thread(target=self._rss, daemon=True)]
        if fire:
            self.threads.append(threading.Thread(target=self._events, daemon=True))

    def __enter__(self) -> "Sampler":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for thread in self.threads:
            thread.join()

    def _rss(self) -> None:
        while not self.stop_flag.is_set():
            self.peak_rss = max(self.peak_rss, self.stack.worker_rss_mb())
            self.stop_flag.wait(0.5)

    def _events(self) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{WEB_PORT}",
            timeout=30,
            headers={"Authorization": f"Api-Key {self.api_key}"},
        ) as client:
            while not self.stop_flag.is_set():
                started = time.perf_counter()
                response = client.post(
                    "/api/v1/events/",
                    json={
                        "channel": STOREFRONT_CHANNEL,
                        "customer": f"shopper-{uuid.uuid4().hex[:8]}",
                        "payload": {},
                    },
                    headers={"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=10"},
                )
                self.latencies.append((time.perf_counter() - started) * 1000)
                # Not done within the 10 s waited: counted, and its latency is the wait.
                self.unanswered += response.json()["status"] != "done"
                self.stop_flag.wait(max(0.0, 0.05 - (time.perf_counter() - started)))

    def wait_ms(self) -> str:
        ordered = sorted(self.latencies)
        self.p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"p50 {statistics.median(ordered):.1f} ms  p99 {self.p99:.1f} ms"
            f" ({len(ordered)} events, {self.unanswered} not done within 10 s)"
        )


def waiting_bytes_per_run() -> tuple[float, int]:
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE activities_waitingrun")
        cursor.execute("SELECT pg_total_relation_size('activities_waitingrun')")
        size = cursor.fetchone()[0]
    rows = WaitingRun.objects.filter(state=WaitState.WAITING).count()
    return size / rows, rows


def clone_waiting(*, source_id: int, target_code: str, due_at: dt.datetime) -> Activity:
    """The source activity's waiting runs again, in another activity of the same journey, due
    at `due_at`: a million waiting rows without a million customers and events more."""
    target = build_points_journey(code=target_code)
    runs = {f.name: sql.Identifier(f.column) for f in ChainRun._meta.concrete_fields}
    waits = {f.name: sql.Identifier(f.column) for f in WaitingRun._meta.concrete_fields}
    run_copy = [
        runs[name]
        for name in ("event", "customer", "outcome", "reason", "steps", "result", "error",
                     "template_version", "created_at")
    ]  # fmt: skip
    wait_copy = [
        waits[name]
        for name in ("customer", "journey", "step", "channel", "watching", "match", "vars",
                     "state", "reason", "created_at")
    ]  # fmt: skip
    statement = sql.SQL(
        "WITH source AS (SELECT r.{run_pk} AS old_id, {run_cols_r} FROM {runs} r"
        " WHERE r.{run_activity} = %(source)s),"
        " cloned AS (INSERT INTO {runs} ({run_activity}, {run_cols})"
        " SELECT %(target)s, {run_cols} FROM source RETURNING {run_pk}, {run_event})"
        " INSERT INTO {waits} ({wait_run}, {wait_activity}, {wait_due}, {wait_cols})"
        " SELECT cloned.{run_pk}, %(target)s, %(due)s, {wait_cols_w}"
        " FROM cloned JOIN {runs} r ON r.{run_event} = cloned.{run_event}"
        " AND r.{run_activity} = %(source)s JOIN {waits} w ON w.{wait_run} = r.{run_pk}"
    ).format(
        runs=sql.Identifier(ChainRun._meta.db_table),
        waits=sql.Identifier(WaitingRun._meta.db_table),
        run_pk=runs["id"],
        run_event=runs["event"],
        run_activity=runs["activity"],
        run_cols=sql.SQL(", ").join(run_copy),
        run_cols_r=sql.SQL(", ").join(sql.SQL("r.{}").format(c) for c in run_copy),
        wait_run=waits["run"],
        wait_activity=waits["activity"],
        wait_due=waits["due_at"],
        wait_cols=sql.SQL(", ").join(wait_copy),
        wait_cols_w=sql.SQL(", ").join(sql.SQL("w.{}").format(c) for c in wait_copy),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(None), {"source": source_id, "target": target.pk, "due": due_at}
        )
    return target


def spread_due(activity_id: int, *, start: dt.datetime, seconds: float) -> None:
    """The activity's waiting runs due one after another, evenly over `seconds` from `start`."""
    waits = {f.name: sql.Identifier(f.column) for f in WaitingRun._meta.concrete_fields}
    statement = sql.SQL(
        "UPDATE {table} w SET {due} = %(start)s + s.n * %(step)s * interval '1 second'"
        " FROM (SELECT {run}, row_number() OVER (ORDER BY {run}) - 1 AS n FROM {table}"
        " WHERE {activity} = %(activity)s) s WHERE w.{run} = s.{run}"
    ).format(
        table=sql.Identifier(WaitingRun._meta.db_table),
        due=waits["due_at"],
        run=waits["run"],
        activity=waits["activity"],
    )
    count = WaitingRun.objects.filter(activity_id=activity_id).count()
    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(None),
            {"start": start, "step": seconds / count, "activity": activity_id},
        )


def wait_for_all(activity_id: int, limit: float = 1800) -> bool:
    """Wait until none of the activity's runs waits, or `limit` seconds; True when all did."""
    runs = WaitingRun.objects.filter(activity_id=activity_id, state=WaitState.WAITING)
    deadline = time.monotonic() + limit
    while runs.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def figures(activity_id: int, count: int, until: dt.datetime | None) -> dict[str, float]:
    """Rate and lags of the runs resumed; `until`: the measurement stopped there unfinished."""
    rows = ChainRun.objects.filter(activity_id=activity_id, outcome="granted").values_list(
        "finished_at", "waiting__due_at"
    )
    lags = sorted((finished - due).total_seconds() for finished, due in rows)
    first_due = WaitingRun.objects.filter(activity_id=activity_id).order_by("due_at")[0].due_at
    last = max((finished for finished, _ in rows), default=first_due)
    if until is None:
        assert len(lags) == count, f"{len(lags)} of {count} runs granted"
        span = max((last - first_due).total_seconds(), 1e-6)
    else:
        # Unfinished runs lag at least until the measurement stopped.
        span = (until - first_due).total_seconds()
        lags += [span] * (count - len(lags))
    return {
        "resumed": len(rows),
        "count": count,
        "rate": len(rows) / span,
        "p50": lags[len(lags) // 2],
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "max": lags[-1],
        "finished": until is None,
    }


def report(label: str, result: dict[str, float]) -> None:
    bound = "" if result["finished"] else ">="
    print(
        f"{label:>22}: {result['rate']:8.0f} resumes/s   lag p50 {bound}{result['p50']:.2f} s"
        f"   p99 {bound}{result['p99']:.2f} s   max {bound}{result['max']:.2f} s"
        + ("" if result["finished"] else f"   ({result['resumed']} of {result['count']})"),
        flush=True,
    )


def sweep(activity_id: int, stack: Stack, api_key: str) -> tuple[dict[str, float], Sampler]:
    """Beat's sweep every second until the activity's runs have all resumed."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            app.send_task(SWEEP, queue="default")
            stop.wait(1.0)

    ticker = threading.Thread(target=beat, daemon=True)
    with Sampler(stack, api_key, fire=True) as sampler:
        ticker.start()
        finished = wait_for_all(activity_id)
        stop.set()
        ticker.join()
    if not finished:
        raise SystemExit("The sweep did not resume every run within 30 minutes.")
    return figures(activity_id, N, None), sampler


def run_countdown(activity_id: int, run_ids: list[int]) -> dict[str, float]:
    # Sending the tasks takes a while; they are all due once the last is sent.
    due_at = timezone.now() + dt.timedelta(seconds=20 + len(run_ids) / 100)
    WaitingRun.objects.filter(activity_id=activity_id).update(due_at=due_at)
    for run_id in run_ids:
        app.send_task(RESUME_ONE, args=[run_id], queue="default", eta=due_at)
    if timezone.now() > due_at:
        raise SystemExit("Sending the countdown tasks outlasted the due time; lower N.")
    limit = (due_at - timezone.now()).total_seconds() + BASELINE_SECONDS
    if wait_for_all(activity_id, limit):
        return figures(activity_id, len(run_ids), None)
    return figures(activity_id, len(run_ids), timezone.now())


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def main() -> None:
    reset_database()
    far = timezone.now() + FAR
    spread = build_points_journey(code="spread")
    make_waiting_runs(activity=spread, channel="signed.up", count=N, due_at=far)
    burst = clone_waiting(source_id=spread.pk, target_code="burst", due_at=far)
    countdown = clone_waiting(source_id=spread.pk, target_code="countdown", due_at=far)
    countdown_runs = list(
        WaitingRun.objects.filter(activity_id=countdown.pk)
        .order_by("pk")
        .values_list("pk", flat=True)[:BASELINE_N]
    )
    WaitingRun.objects.filter(activity_id=countdown.pk).exclude(pk__in=countdown_runs).delete()
    storefront = build_journey(
        code="storefront",
        channel=STOREFRONT_CHANNEL,
        steps=[{"processor": "grant_benefit", "config": {"benefit": "points", "quantity": 1}}],
    )
    BenefitFactory(activity=storefront, code="points", kind="points")
    _, api_key = make_api_key("bench-journeys")
    per_run, rows = waiting_bytes_per_run()
    print(f"N = {N}; worker -Q events,default -c 3; load average {os.getloadavg()}", flush=True)
    print(f"storage per waiting run: {per_run:.0f} bytes (table + indexes, {rows} rows)")
    stack = Stack()
    stack.start()
    try:
        with Sampler(stack, api_key, fire=True) as idle:
            time.sleep(30)
        print(f"Prefer: wait idle: {idle.wait_ms()}; worker RSS {idle.peak_rss:.0f} MB", flush=True)

        spread_due(spread.pk, start=timezone.now() + dt.timedelta(seconds=5), seconds=60)
        spread_result, spread_sampler = sweep(spread.pk, stack, api_key)
        report("sweep, due over 1 min", spread_result)
        print(f"  (runs fall due at {N / 60:.0f}/s, so that is the most this shape can show)")
        print(
            f"Prefer: wait meanwhile: {spread_sampler.wait_ms()},"
            f" p99 = {ratio(spread_sampler.p99, idle.p99)} idle;"
            f" worker RSS peak {spread_sampler.peak_rss:.0f} MB ({rows} waiting)",
            flush=True,
        )

        waiting_before = WaitingRun.objects.filter(state=WaitState.WAITING).count()
        clones = max(0, -(-(WAITING - waiting_before) // N))
        for number in range(clones):
            clone_waiting(source_id=burst.pk, target_code=f"far-{number}", due_at=far)
        waiting_now = WaitingRun.objects.filter(state=WaitState.WAITING).count()
        WaitingRun.objects.filter(activity_id=burst.pk).update(
            due_at=timezone.now() + dt.timedelta(seconds=5)
        )
        burst_result, burst_sampler = sweep(burst.pk, stack, api_key)
        report("sweep, due same second", burst_result)
        print(
            f"Prefer: wait meanwhile: {burst_sampler.wait_ms()},"
            f" p99 = {ratio(burst_sampler.p99, idle.p99)} idle;"
            f" worker RSS peak {burst_sampler.peak_rss:.0f} MB ({waiting_now} waiting)",
            flush=True,
        )

        baseline = run_countdown(countdown.pk, countdown_runs)
        report(f"countdown tasks (N={BASELINE_N})", baseline)
    finally:
        stack.stop()
        redis_client().flushdb()
    print(
        f"ratio same-second sweep / countdown: {ratio(burst_result['rate'], baseline['rate'])}"
        f" resumes/s, p99 lag {ratio(burst_result['p99'], baseline['p99'])};"
        f" worker RSS {waiting_now} vs {rows} waiting:"
        f" {ratio(burst_sampler.peak_rss, spread_sampler.peak_rss)}"
    )


if __name__ == "__main__":
    main()

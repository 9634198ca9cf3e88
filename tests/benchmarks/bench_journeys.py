"""Waiting runs: N runs due at the same moment, resumed by the beat sweep (batches claimed
with SKIP LOCKED) versus the same resumes fired as Celery countdown tasks, one per run.

Both sides resume the same journey (wait 1 minute -> grant one point) with the same worker
(`celery worker -Q default -c 2`, the Procfile's shape) and the same resume code; only the
claiming differs. The sweep side sends the sweep task every second, as beat does with
GAMBIT_JOURNEY_SWEEP_INTERVAL=1. Printed: resumes/s from the due moment to the last resume,
the lag of each resume behind its due time (p50, p99, max), their ratio to the baseline, and
the storage of a waiting run (pg_total_relation_size of the table and its indexes / rows).

Usage: BENCH_JOURNEYS_N=20000 .venv/bin/python tests/benchmarks/bench_journeys.py
(a few minutes with the default N; BENCH_JOURNEYS_N=100000 is the issue's scale). The baseline
stops after BENCH_JOURNEYS_BASELINE_SECONDS (120) past the due time; if it has not finished,
its rate is what it resumed by then and its lags are lower bounds (printed with >=).
"""

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DB_NAME = "gambit_bench_journeys"
REDIS_URL = os.environ.get("BENCH_JOURNEYS_REDIS_URL", "redis://127.0.0.1:6379/11")
N = int(os.environ.get("BENCH_JOURNEYS_N", "20000"))
# The countdown baseline is slow with many ETA tasks held by the worker; it is measured over
# this long after the due time, and what it resumed by then gives its rate.
BASELINE_SECONDS = float(os.environ.get("BENCH_JOURNEYS_BASELINE_SECONDS", "120"))
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "tests.benchmarks.settings",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
}
os.environ.update(BENCH_ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from activities.models import ChainRun, WaitingRun, WaitState  # noqa: E402
from config.celery import app  # noqa: E402
from core.redis_pools import redis_client  # noqa: E402
from tests.benchmarks.journey_tasks import RESUME_ONE  # noqa: E402
from tests.journeys.builders import build_points_journey, make_waiting_runs  # noqa: E402

SWEEP = "activities.tasks.resume_due_waits_task"
FAR = dt.timedelta(days=1)


def reset_database() -> None:
    for command in ("dropdb", "createdb"):
        extra = ["--if-exists"] if command == "dropdb" else []
        subprocess.run([command, "-h", "127.0.0.1", "-U", "postgres", *extra, DB_NAME], check=True)
    call_command("migrate", verbosity=0)


def start_worker() -> subprocess.Popen:
    if app.control.ping(timeout=1):
        raise SystemExit(f"A Celery worker already answers on {REDIS_URL}; stop it first.")
    redis_client().flushdb()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default", "-c", "2",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "ERROR"],
        cwd=ROOT, env={**os.environ, **BENCH_ENV},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        if time.monotonic() > deadline:
            raise SystemExit("The worker did not start.")
    return worker


def waiting_bytes_per_run() -> float:
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE activities_waitingrun")
        cursor.execute("SELECT pg_total_relation_size('activities_waitingrun')")
        size = cursor.fetchone()[0]
    return size / WaitingRun.objects.filter(state=WaitState.WAITING).count()


def wait_for_all(activity_id: int, limit: float = 1800) -> bool:
    """Wait until none of the activity's runs waits, or `limit` seconds; True when all did."""
    runs = WaitingRun.objects.filter(activity_id=activity_id, state=WaitState.WAITING)
    deadline = time.monotonic() + limit
    while runs.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def figures(activity_id: int, due_at: dt.datetime, until: dt.datetime | None) -> dict[str, float]:
    """Rate and lags of the runs resumed; `until`: the measurement stopped there unfinished."""
    finished = sorted(
        ChainRun.objects.filter(activity_id=activity_id, outcome="granted").values_list(
            "finished_at", flat=True
        )
    )
    lags = [(at - due_at).total_seconds() for at in finished]
    if until is None:
        assert len(finished) == N, f"{len(finished)} of {N} runs granted"
        span = max(lags[-1], 1e-6)
    else:
        # Unfinished runs lag at least until the measurement stopped.
        stopped = (until - due_at).total_seconds()
        lags += [stopped] * (N - len(finished))
        span = stopped
    lags.sort()
    return {
        "resumed": len(finished),
        "rate": len(finished) / span,
        "p50": lags[len(lags) // 2],
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "max": lags[-1],
        "finished": until is None,
    }


def report(label: str, result: dict[str, float]) -> None:
    bound = "" if result["finished"] else ">="
    print(
        f"{label:>16}: {result['rate']:8.0f} resumes/s   lag p50 {bound}{result['p50']:.2f} s"
        f"   p99 {bound}{result['p99']:.2f} s   max {bound}{result['max']:.2f} s"
        + ("" if result["finished"] else f"   ({result['resumed']} of {N} in the window)"),
        flush=True,
    )


def prepare(code: str) -> tuple[int, list[int]]:
    activity = build_points_journey(code=code)
    run_ids = make_waiting_runs(
        activity=activity, channel="signed.up", count=N, due_at=timezone.now() + FAR
    )
    return activity.pk, run_ids


def run_sweep(activity_id: int) -> dict[str, float]:
    due_at = timezone.now() + dt.timedelta(seconds=3)
    WaitingRun.objects.filter(activity_id=activity_id).update(due_at=due_at)
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            app.send_task(SWEEP, queue="default")
            stop.wait(1.0)

    ticker = threading.Thread(target=beat, daemon=True)
    ticker.start()
    if not wait_for_all(activity_id):
        raise SystemExit("The sweep did not resume every run within 30 minutes.")
    stop.set()
    ticker.join()
    return figures(activity_id, due_at, None)


def run_countdown(activity_id: int, run_ids: list[int]) -> dict[str, float]:
    # Sending N tasks takes a while; they are all due once the last is sent.
    due_at = timezone.now() + dt.timedelta(seconds=10 + N / 300)
    WaitingRun.objects.filter(activity_id=activity_id).update(due_at=due_at)
    for run_id in run_ids:
        app.send_task(RESUME_ONE, args=[run_id], queue="default", eta=due_at)
    if timezone.now() > due_at:
        raise SystemExit("Sending the countdown tasks outlasted the due time; lower N.")
    limit = (due_at - timezone.now()).total_seconds() + BASELINE_SECONDS
    if wait_for_all(activity_id, limit):
        return figures(activity_id, due_at, None)
    return figures(activity_id, due_at, timezone.now())


def main() -> None:
    reset_database()
    sweep_activity, _ = prepare("sweep")
    countdown_activity, countdown_runs = prepare("countdown")
    per_run = waiting_bytes_per_run()
    print(f"{N} waiting runs due at the same moment, worker -c 2 on queue default", flush=True)
    print(f"storage per waiting run: {per_run:.0f} bytes (table + indexes, {2 * N} rows)")
    worker = start_worker()
    try:
        sweep = run_sweep(sweep_activity)
        report("beat sweep", sweep)
        countdown = run_countdown(countdown_activity, countdown_runs)
        report("countdown tasks", countdown)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        redis_client().flushdb()
    print(
        f"ratio sweep/countdown: {sweep['rate'] / countdown['rate']:.2f}x resumes/s, "
        f"p99 lag {sweep['p99'] / max(countdown['p99'], 1e-6):.2f}x"
    )


if __name__ == "__main__":
    main()

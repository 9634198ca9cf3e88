"""Fault injection for the soak: SIGKILLed workers, a restarted Redis, cut PostgreSQL sessions,
and the two first ones overlapping (a worker killed while Redis is down).

One thread injects every fault in turn (a fault ends before the next begins, so a worker is
never restarted against a broker that is down), at random times drawn from each fault's
interval, until the deadline.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from tests.conftest import Worker
from tests.integration.conftest import RedisServer

KILL_DURING_REDIS_RESTART = "worker SIGKILL during a Redis restart"


@dataclass
class FaultLog:
    """What was injected: counts, timings and anything the injector itself hit."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    sessions_cut: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, took: float) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            self.seconds.setdefault(name, []).append(took)


@dataclass
class Fault:
    name: str
    every: tuple[float, float]  # seconds between two injections, drawn uniformly
    inject: Callable[[], None]


class Chaos:
    def __init__(
        self,
        *,
        workers: list[Worker],
        redis_server: RedisServer,
        dsn: str,
        database: str,
        spared_pids: set[int],
        rng: random.Random,
        redis_down: tuple[float, float] = (2.0, 5.0),
    ) -> None:
        self.workers = workers
        self.redis_server = redis_server
        self.dsn = dsn
        self.database = database
        self.spared_pids = spared_pids
        self.rng = rng
        self.redis_down = redis_down
        self.log = FaultLog()
        self.faults = [
            Fault("worker SIGKILL", (6.0, 14.0), self.kill_worker),
            Fault("Redis restart", (40.0, 60.0), self.restart_redis),
            Fault("PostgreSQL sessions cut", (10.0, 20.0), self.cut_connections),
            Fault(KILL_DURING_REDIS_RESTART, (40.0, 60.0), self.kill_worker_during_redis_restart),
        ]

    def kill_worker(self) -> None:
        worker = self.rng.choice(self.workers)
        worker.kill()
        time.sleep(self.rng.uniform(0.5, 2.0))
        worker.start()

    def restart_redis(self) -> None:
        self.redis_server.stop()
        time.sleep(self.rng.uniform(*self.redis_down))
        self.redis_server.start()

    def kill_worker_during_redis_restart(self) -> None:
        """Overlapping faults: the broker goes down, a worker is SIGKILLed in the outage (its
        unacked tasks were on the lost broker), and it is restarted once Redis is back."""
        worker = self.rng.choice(self.workers)
        down = self.rng.uniform(*self.redis_down)
        self.redis_server.stop()
        kill_at = self.rng.uniform(0.2, down * 0.6)
        time.sleep(kill_at)
        worker.kill()
        time.sleep(down - kill_at)
        self.redis_server.start()
        time.sleep(self.rng.uniform(0.2, 1.0))
        worker.start()

    def cut_connections(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s))",
                [self.database, list(self.spared_pids)],
            ).fetchall()
        with self.log.lock:
            self.log.sessions_cut += sum(1 for (killed,) in rows if killed)

    def run(self, *, start_after: float, deadline: float) -> None:
        """Inject until `deadline` (a time.monotonic() value)."""
        now = time.monotonic()
        queue = [
            (now + start_after + self.rng.uniform(*fault.every) / 2, index)
            for index, fault in enumerate(self.faults)
        ]
        heapq.heapify(queue)
        while queue:
            due, index = heapq.heappop(queue)
            if due >= deadline:
                continue
            time.sleep(max(0.0, due - time.monotonic()))
            fault = self.faults[index]
            started = time.monotonic()
            try:
                fault.inject()
            except Exception as error:  # a failed injection is reported, never hidden
                self.log.errors.append(f"{fault.name}: {error!r}")
            self.log.record(fault.name, time.monotonic() - started)
            heapq.heappush(queue, (time.monotonic() + self.rng.uniform(*fault.every), index))

    def start(self, *, start_after: float, deadline: float) -> threading.Thread:
        thread = threading.Thread(
            target=self.run, kwargs={"start_after": start_after, "deadline": deadline}, daemon=True
        )
        thread.start()
        return thread

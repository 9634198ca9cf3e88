"""Shared fixtures. Integration tests get a real Celery worker that reads the test database."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import make_api_key

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate: Callable[[], object], *, timeout: float = 30, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def api_key(db):
    key, raw = make_api_key()
    return key, raw


@pytest.fixture
def api(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")
    client.storefront_key = api_key[0]
    return client


def worker_env() -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": (
                f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                f"{db['NAME']}"
            ),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        }
    )
    return env


class Worker:
    """A real `celery worker` process on every queue, against the test database."""

    def __init__(
        self,
        *,
        concurrency: int = 4,
        queues: str = "events,fanout,sends,default",
        extra_args: tuple[str, ...] = (),
        env_overrides: dict[str, str] | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.queues = queues
        self.extra_args = extra_args
        self.env_overrides = env_overrides or {}
        self.process: subprocess.Popen | None = None
        self.node = f"test-{os.getpid()}-{id(self)}@{socket.gethostname()}"
        self.log = ROOT / "test-artifacts" / f"worker-{os.getpid()}-{id(self)}.log"

    def start(self) -> "Worker":
        self.log.parent.mkdir(exist_ok=True)
        command = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queues,
            "-c", str(self.concurrency), "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "WARNING", "-n", self.node, *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**worker_env(), **self.env_overrides},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, timeout=60, interval=0.2)
        return self

    def answers(self) -> bool:
        if "CELERY_BROKER_URL" not in self.env_overrides:
            from config.celery import app

            return bool(app.control.ping(destination=[self.node], timeout=0.5))
        # A worker on another broker: ask through that broker, from a process configured for it.
        command = [sys.executable, "-m", "celery", "-A", "config", "inspect", "ping",
                   "-d", self.node, "--timeout", "1"]  # fmt: skip
        env = {**worker_env(), **self.env_overrides}
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False)
        return result.returncode == 0

    def wait_idle(self, *, timeout: float = 60) -> None:
        """Wait until no task of this worker runs, waits or sits in its queues."""
        from config.celery import app

        broker = redis.Redis.from_url(
            self.env_overrides.get("CELERY_BROKER_URL") or settings.CELERY_BROKER_URL
        )
        queues = self.queues.split(",")

        def idle() -> bool:
            if any(broker.llen(queue) for queue in queues):
                return False
            inspector = app.control.inspect(destination=[self.node], timeout=1)
            for probe in (inspector.active, inspector.reserved, inspector.scheduled):
                if any((probe() or {}).values()):
                    return False
            return True

        # Twice in a row: a task that finishes may have just enqueued its successor.
        wait_until(lambda: idle() and idle(), timeout=timeout, interval=0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its children)."""
        if self.process and self.process.poll() is None:
            subprocess.run(["pkill", "-KILL", "-P", str(self.process.pid)], check=False)
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def flushed_broker():
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


class SessionWorker:
    """The worker `celery_worker` tests share, started when one first needs it. A test that runs
    workers of its own stops it first: two workers on one broker would share the test's tasks."""

    def __init__(self, django_db_blocker) -> None:
        self.blocker = django_db_blocker
        self.worker: Worker | None = None

    def running(self) -> Worker:
        if self.worker is None:
            with self.blocker.unblock():
                self.worker = Worker().start()
        return self.worker

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None


@pytest.fixture(scope="session")
def session_worker(django_db_setup, django_db_blocker, flushed_broker) -> Iterator[SessionWorker]:
    shared = SessionWorker(django_db_blocker)
    yield shared
    shared.stop()


@pytest.fixture
def celery_worker(transactional_db, session_worker) -> Iterator[Worker]:
    """One worker for the whole session; tests using it need `transaction=True`.

    Torn down before the database is flushed, it waits for the worker to go idle: a task still
    holding row locks when the flush truncates every table can deadlock the flush.
    """
    worker = session_worker.running()
    yield worker
    worker.wait_idle()


@pytest.fixture
def make_worker(django_db_setup, flushed_broker, session_worker) -> Iterator[Callable[..., Worker]]:
    """Workers a test starts, kills and restarts itself."""
    session_worker.stop()
    started: list[Worker] = []

    def make(**kwargs) -> Worker:
        worker = Worker(**kwargs).start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()

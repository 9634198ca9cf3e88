"""The real stack as separate processes: gunicorn, Celery worker, Celery beat, and (for outage
tests) a Redis broker of the test's own that it can stop and start."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import ROOT, Worker, wait_until, worker_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on its own port, so a test can take the broker away."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10)
        return self

    def _answers(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, check=False
        )
        return result.stdout.strip() == "PONG"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class Stack:
    env_overrides: dict[str, str] = field(default_factory=dict)
    beat: bool = False
    web_workers: int = 3
    base_url: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)
    worker: Worker | None = None

    def env(self) -> dict[str, str]:
        env = worker_env()
        env.update(self.env_overrides)
        return env

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = ROOT / "test-artifacts" / f"{name}-{os.getpid()}.log"
        log.parent.mkdir(exist_ok=True)
        process = subprocess.Popen(
            args, cwd=ROOT, env=self.env(), stdout=log.open("ab"), stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def start(self) -> "Stack":
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self._spawn(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(self.web_workers),
                "--threads",
                "8",
                "--timeout",
                "60",
            ],
        )
        self.worker = Worker(env_overrides=self.env_overrides).start()
        if self.beat:
            self._spawn(
                "beat",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "beat",
                    "-l",
                    "WARNING",
                    "-s",
                    str(ROOT / "test-artifacts" / f"beat-{os.getpid()}.db"),
                ],
            )
        wait_until(self._web_answers, timeout=30, interval=0.2)
        return self

    def _web_answers(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/api/v1/activities/", timeout=1).status_code == 401
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.worker:
            self.worker.stop()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.fixture
def start_stack(django_db_setup, flushed_broker, session_worker) -> Iterator:
    session_worker.stop()  # the stack's own worker serves this test alone
    stacks: list[Stack] = []

    def start(**kwargs) -> Stack:
        stack = Stack(**kwargs).start()
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()

"""A worker keeps its PostgreSQL session across tasks when CONN_MAX_AGE allows it: Celery's
Django fixup alone would open a new session for every task (config/celery.py)."""

import uuid

import pytest

from config.celery import app
from core.redis_pools import redis_client
from tests.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def backend_pids_of_three_tasks() -> list[int]:
    key = f"gambit:test:pids:{uuid.uuid4().hex}"
    for _ in range(3):
        app.send_task("tests.record_backend_pid_task", args=[key], queue="default")
    wait_until(lambda: redis_client().llen(key) == 3)
    return [int(pid) for pid in redis_client().lrange(key, 0, -1)]


def test_a_worker_reuses_its_session_within_conn_max_age(make_worker):
    make_worker(concurrency=1, env_overrides={"DJANGO_CONN_MAX_AGE": "60"})
    assert len(set(backend_pids_of_three_tasks())) == 1


def test_a_worker_with_conn_max_age_0_opens_a_session_per_task(make_worker):
    make_worker(concurrency=1, env_overrides={"DJANGO_CONN_MAX_AGE": "0"})
    assert len(set(backend_pids_of_three_tasks())) == 3

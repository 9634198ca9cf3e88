"""Operations basics: JSON logs carrying the run's identity, and /health/."""

import json
import uuid

import httpx
import pytest

from activities.models import ChainRun
from tests.conftest import wait_until
from tests.factories import build_quiz_lottery, make_api_key

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_worker_logs_are_json_with_event_run_activity_and_customer(start_stack):
    build_quiz_lottery()
    stack = start_stack(env_overrides={"DJANGO_LOG_LEVEL": "INFO", "GAMBIT_LOG_FORMAT": "json"})
    _, raw = make_api_key()
    response = httpx.post(
        f"{stack.base_url}/api/v1/events/",
        json={"channel": "quiz.completed", "customer": "logan", "payload": {"score": 75}},
        headers={
            "Authorization": f"Api-Key {raw}",
            "Idempotency-Key": uuid.uuid4().hex,
            "Prefer": "wait=10",
        },
        timeout=30,
    )
    event_id = response.json()["id"]
    run = wait_until(lambda: ChainRun.objects.filter(event_id=event_id).first())

    def finished_line():
        for line in stack.worker.log.read_text().splitlines():
            if line.startswith("{") and '"run_finished"' in line:
                return json.loads(line)
        return None

    entry = wait_until(finished_line, timeout=10)
    assert entry["event_id"] == event_id
    assert entry["run_id"] == run.pk
    assert entry["activity"] == "spring"
    assert entry["customer"] == "logan"
    assert entry["outcome"] == "granted"
    assert entry["level"] == "info"


# /health/ names the failing check only to staff and to holders of the metrics token.
METRICS_TOKEN = "scrape-secret"
DETAILS = {"Accept": "application/json", "Authorization": f"Bearer {METRICS_TOKEN}"}


def health_once_unhealthy(url: str) -> httpx.Response:
    """Each web process answers from its last probe for a few seconds: ask until one probes."""

    def unhealthy() -> httpx.Response | None:
        response = httpx.get(url, headers=DETAILS, timeout=30)
        return response if response.status_code == 500 else None

    return wait_until(unhealthy, timeout=30, interval=0.5)


def test_health_checks_database_redis_and_a_worker(start_stack):
    stack = start_stack(env_overrides={"GAMBIT_METRICS_TOKEN": METRICS_TOKEN})
    url = f"{stack.base_url}/health/"
    healthy = httpx.get(url, headers=DETAILS, timeout=30)
    assert healthy.status_code == 200, healthy.text
    body = healthy.json()
    assert len(body) == 3
    assert all(value == "OK" for value in body.values()), body
    anonymous = httpx.get(url, headers={"Accept": "application/json"}, timeout=30)
    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "ok"})

    stack.worker.stop()
    unhealthy = health_once_unhealthy(url)
    failing = [name for name, value in unhealthy.json().items() if value != "OK"]
    assert len(failing) == 1 and "Ping" in failing[0], unhealthy.json()
    anonymous = httpx.get(url, headers={"Accept": "application/json"}, timeout=30)
    assert (anonymous.status_code, anonymous.json()) == (500, {"status": "unavailable"})


def test_health_wants_every_queue_served_by_the_procfile_workers(start_stack, make_worker):
    stack = start_stack(env_overrides={"GAMBIT_METRICS_TOKEN": METRICS_TOKEN})
    stack.worker.stop()
    make_worker(queues="events,default")
    sender = make_worker(queues="fanout,sends")
    url = f"{stack.base_url}/health/"

    def healthy() -> httpx.Response | None:
        response = httpx.get(url, headers=DETAILS, timeout=30)
        return response if response.status_code == 200 else None

    body = wait_until(healthy, timeout=30, interval=0.5).json()
    assert all(value == "OK" for value in body.values()), body

    sender.stop()
    unhealthy = health_once_unhealthy(url)
    failing = {name: value for name, value in unhealthy.json().items() if value != "OK"}
    assert len(failing) == 1, failing
    (message,) = failing.values()
    assert message in {
        "Unavailable: No worker for Celery task queue fanout",
        "Unavailable: No worker for Celery task queue sends",
    }, message

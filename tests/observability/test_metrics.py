"""`/metrics`: counters move on commit only; state gauges read the broker and the database."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from activities.models import Event
from activities.services import events
from activities.services.events import process_event
from tests.factories import (
    ActivityFactory,
    ChainFactory,
    ChannelFactory,
    CustomerFactory,
    StepFactory,
    TemplateFactory,
    build_quiz_lottery,
)

pytestmark = pytest.mark.django_db


def scrape() -> dict[str, float]:
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    values = {}
    for line in response.content.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def fire(api, channel: str, customer: str, payload: dict) -> str:
    response = api.post(
        "/api/v1/events/",
        {"channel": channel, "customer": customer, "payload": payload},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert response.status_code == 202, response.json()
    return response.json()["id"]


def test_events_runs_and_grants_are_counted_on_commit(api, django_capture_on_commit_callbacks):
    build_quiz_lottery()
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        first = fire(api, "quiz.completed", "m1", {"score": 90})
        low = fire(api, "quiz.completed", "m2", {"score": 10})
    with django_capture_on_commit_callbacks(execute=True):
        process_event(event_id=first)
    with django_capture_on_commit_callbacks(execute=True):
        process_event(event_id=low)
    after = scrape()
    channel = 'gambit_events_total{channel="quiz.completed",source="storefront"}'
    assert delta(before, after, channel) == 2
    assert delta(before, after, 'gambit_runs_total{outcome="granted"}') == 1
    assert delta(before, after, 'gambit_runs_total{outcome="rejected"}') == 1
    assert delta(before, after, "gambit_run_duration_seconds_count") == 2
    assert delta(before, after, 'gambit_grants_total{kind="chance"}') == 1
    assert delta(before, after, 'gambit_grant_units_total{kind="chance"}') == 1
    assert Event.objects.filter(state="done").count() == 2


def test_system_and_emitted_events_are_counted_by_source(
    django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(events, "dispatch_event", lambda *, event_id: True)
    template = TemplateFactory(code="relay")
    chain = ChainFactory(template=template, channel=ChannelFactory(code="order.paid"))
    ChannelFactory(code="relay.done")
    StepFactory(chain=chain, processor="emit_event", config={"channel": "relay.done"})
    ActivityFactory(code="relay", template=template, running=True)
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        paid = events.record_system_event(
            channel_code="order.paid", customer=CustomerFactory(), payload={}, idempotency_key="o1"
        )
    with django_capture_on_commit_callbacks(execute=True):
        process_event(event_id=paid.pk)
    after = scrape()
    assert delta(before, after, 'gambit_events_total{channel="order.paid",source="system"}') == 1
    assert delta(before, after, 'gambit_events_total{channel="relay.done",source="emitted"}') == 1
    assert delta(before, after, 'gambit_runs_total{outcome="completed"}') == 1


def test_a_rolled_back_event_is_not_counted(api):
    """Without the commit (the test's transaction never commits) nothing is counted."""
    build_quiz_lottery()
    before = scrape()
    fire(api, "quiz.completed", "m3", {"score": 90})
    after = scrape()
    assert (
        delta(before, after, 'gambit_events_total{channel="quiz.completed",source="storefront"}')
        == 0
    )


def test_state_gauges(api, settings):
    import redis

    build_quiz_lottery()
    fire(api, "quiz.completed", "m4", {"score": 90})
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("events")
    broker.rpush("events", "a", "b", "c")
    try:
        values = scrape()
    finally:
        broker.delete("events")
    assert values['gambit_queue_depth{queue="events"}'] == 3
    assert values["gambit_events_unfinished"] == 1
    assert values['gambit_deliveries_open{status="queued"}'] == 0
    assert "gambit_queue_unacked" in values


def test_a_down_broker_leaves_the_queue_gauges_out(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    values = scrape()
    assert not any(re.match(r"gambit_queue_", name) for name in values)
    assert "gambit_events_unfinished" in values


MULTIPROCESS_SCRIPT = """
import multiprocessing, os
import django
django.setup()
from core.metrics import EVENTS
from observability.metrics import exposition

def count():
    EVENTS.labels(source="storefront", channel="mp.test").inc()

count()
for _ in range(3):
    child = multiprocessing.get_context("fork").Process(target=count)
    child.start()
    child.join()
text = exposition().decode()
line = [l for l in text.splitlines() if l.startswith("gambit_events_total{") and "mp.test" in l]
print(line[0])
"""


def test_multiprocess_mode_sums_every_process(tmp_path):
    """gunicorn workers and Celery children count in their own processes; with
    PROMETHEUS_MULTIPROC_DIR one scrape sums them all."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, worker_env

    env = {**worker_env(), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith(" 4.0"), result.stdout
    assert os.listdir(tmp_path)

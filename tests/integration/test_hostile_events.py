"""A hostile event cannot hold the pipeline (real Celery worker): an attempt that stalls is
stopped at the soft time limit and rolled back, one that ignores it is killed at the hard limit,
the worker goes on with the next event, and after its attempts the event is a dead letter."""

import datetime as dt

import pytest

from activities.models import ChainRun, Event, Grant
from activities.services import events
from activities.tasks import run_event_task
from tests.conftest import wait_until
from tests.factories import build_quiz_lottery, make_api_key

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# One pool process, so the event behind the hostile one waits for it, and tiny limits. The
# hostile step stalls for 120 s: the event behind it finishing within the 60 s wait is the proof
# that a limit ended the stall (no stopwatch in the assertions).
HOSTILE_WORKER = {
    "concurrency": 1,
    "queues": "events",
    "env_overrides": {
        "GAMBIT_TEST_STALLING_STEPS": "1",
        "GAMBIT_EVENT_SOFT_TIME_LIMIT": "1",
        "GAMBIT_EVENT_TIME_LIMIT": "3",
        "GAMBIT_EVENT_MAX_ATTEMPTS": "2",
    },
}


@pytest.fixture(autouse=True)
def tiny_limits(settings, monkeypatch):
    """The same limits on this side: a task's time limits travel in the message it sends."""
    settings.GAMBIT_EVENT_MAX_ATTEMPTS = 2
    monkeypatch.setattr(run_event_task, "soft_time_limit", 1)
    monkeypatch.setattr(run_event_task, "time_limit", 3)


def accept(customer: str, key: str, **payload) -> Event:
    event, _ = events.accept_event(
        client=make_api_key()[0],
        idempotency_key=key,
        channel_code="quiz.completed",
        customer_external_id=customer,
        payload={"score": 90, **payload},
    )
    return event


def done(event: Event) -> bool:
    return Event.objects.get(pk=event.pk).state == "done"


def test_a_stalled_attempt_is_stopped_at_the_soft_limit_and_the_next_event_runs(make_worker):
    build_quiz_lottery()
    make_worker(**HOSTILE_WORKER)
    hostile = accept("ann", "stalls", stall_seconds=120)
    behind = accept("bea", "behind")
    wait_until(lambda: done(behind), timeout=60)
    hostile.refresh_from_db()
    assert (hostile.state, hostile.attempts, hostile.error) == (
        "running",
        1,
        "The attempt was stopped by its time limit (1 s).",
    )
    # Rolled back: the grant step had run before the stalled one.
    assert not ChainRun.objects.filter(event=hostile).exists()
    assert not Grant.objects.filter(customer__external_id="ann").exists()
    assert Grant.objects.filter(customer__external_id="bea").count() == 1


def test_an_attempt_that_ignores_the_soft_limit_is_killed_then_the_event_is_a_dead_letter(
    make_worker,
):
    build_quiz_lottery()
    worker = make_worker(**HOSTILE_WORKER)
    hostile = accept("cid", "stubborn", stall_seconds=120, ignore_soft_limit=True)
    behind = accept("dan", "behind")
    wait_until(lambda: done(behind), timeout=60)
    hostile.refresh_from_db()
    assert (hostile.state, hostile.attempts, hostile.error) == ("pending", 1, "")
    assert worker.process.poll() is None  # only the pool process was killed
    # The sweeper sends it again; the second attempt is killed as well.
    assert events.sweep_unfinished_events(older_than=dt.timedelta(0)) == 1
    wait_until(lambda: Event.objects.get(pk=hostile.pk).attempts == 2, timeout=30)
    last = accept("eve", "last")
    wait_until(lambda: done(last), timeout=60)
    assert events.sweep_unfinished_events(older_than=dt.timedelta(0)) == 0
    hostile.refresh_from_db()
    assert (hostile.state, hostile.failure_reason, hostile.attempts, hostile.error) == (
        "failed",
        "attempts_exhausted",
        2,
        "No attempt finished: each one was stopped by the hard time limit or lost with its worker.",
    )
    assert events.sweep_unfinished_events(older_than=dt.timedelta(0)) == 0
    assert not ChainRun.objects.filter(event=hostile).exists()

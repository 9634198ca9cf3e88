"""An attempts cap per event: every attempt is counted before it starts, a soft time limit ends
the attempt cleanly, an event out of attempts is a dead letter that the sweeper leaves alone,
the admin lists it with its reason, and an approver runs it again."""

import datetime as dt

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from activities import enqueue
from activities.engine.processors.build_result import BuildResult
from activities.models import ChainRun, Event, Grant, Participation, RunOutcome
from activities.services import events
from activities.tasks import run_event_task
from config.celery import app
from tests.e2e.scenario import role_user
from tests.factories import build_quiz_lottery, make_api_key

TIME_LIMIT_ERROR = "The attempt was stopped by its time limit (10 s)."


def accept(customer: str, key: str) -> Event:
    event, _ = events.accept_event(
        client=make_api_key()[0],
        idempotency_key=key,
        channel_code="quiz.completed",
        customer_external_id=customer,
        payload={"score": 90},
    )
    return event


def stalled(self, ctx):
    raise SoftTimeLimitExceeded


@pytest.fixture
def dispatched(monkeypatch):
    """Event ids handed to the broker, instead of handing them."""
    sent: list[str] = []
    monkeypatch.setattr(
        enqueue, "run_event", lambda *, event_id: sent.append(str(event_id)) or True
    )
    return sent


@pytest.fixture
def eager():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def make_overdue(event: Event) -> None:
    Event.objects.filter(pk=event.pk).update(dispatched_at=timezone.now() - dt.timedelta(minutes=5))


@pytest.mark.django_db(transaction=True)
def test_each_attempt_is_counted_before_it_starts_and_the_count_outlives_its_rollback(
    monkeypatch, dispatched
):
    build_quiz_lottery()
    event = accept("ann", "counted")

    def connection_lost(*, event, activity):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patched:
        patched.setattr(events, "run_activity", connection_lost)
        with pytest.raises(OperationalError):
            events.process_event(event_id=event.pk)
    event.refresh_from_db()
    assert (event.state, event.attempts) == ("pending", 1)
    assert not ChainRun.objects.exists()
    events.process_event(event_id=event.pk)
    event.refresh_from_db()
    assert (event.state, event.attempts) == ("done", 2)
    events.process_event(event_id=event.pk)  # a duplicate delivery of a finished event
    assert Event.objects.get(pk=event.pk).attempts == 2


@pytest.mark.django_db(transaction=True)
def test_the_soft_time_limit_rolls_the_attempt_back_and_records_why(monkeypatch, dispatched):
    build_quiz_lottery()
    event = accept("bea", "stalls")
    monkeypatch.setattr(BuildResult, "process", stalled)  # after the grant step has run
    run_event_task.apply(args=[str(event.pk)])
    event.refresh_from_db()
    assert (event.state, event.attempts, event.error, event.failure_reason) == (
        "running",
        1,
        TIME_LIMIT_ERROR,
        "",
    )
    assert (ChainRun.objects.count(), Grant.objects.count(), Participation.objects.count()) == (
        0,
        0,
        0,
    )


@pytest.mark.django_db(transaction=True)
def test_an_event_that_fails_every_attempt_is_a_dead_letter_the_sweeper_leaves_alone(
    settings, monkeypatch, dispatched
):
    settings.GAMBIT_EVENT_MAX_ATTEMPTS = 3
    build_quiz_lottery()
    event = accept("cid", "hostile")
    monkeypatch.setattr(BuildResult, "process", stalled)
    assert dispatched == [str(event.pk)]  # on accept
    run_event_task.apply(args=dispatched[-1:])
    for _ in range(2):
        make_overdue(event)
        assert events.sweep_unfinished_events(older_than=dt.timedelta(seconds=30)) == 1
        run_event_task.apply(args=dispatched[-1:])
    event.refresh_from_db()
    assert (event.state, event.attempts) == ("running", 3)
    make_overdue(event)
    assert events.sweep_unfinished_events(older_than=dt.timedelta(seconds=30)) == 0
    event.refresh_from_db()
    assert (event.state, event.failure_reason, event.attempts, event.error) == (
        "failed",
        "attempts_exhausted",
        3,
        TIME_LIMIT_ERROR,
    )
    assert event.finished_at is not None
    make_overdue(event)
    assert events.sweep_unfinished_events(older_than=dt.timedelta(seconds=30)) == 0
    assert dispatched == [str(event.pk)] * 3
    assert not ChainRun.objects.exists()


@pytest.mark.django_db
def test_a_delivery_of_an_event_out_of_attempts_fails_it_without_running_it(settings, dispatched):
    build_quiz_lottery()
    event = accept("dan", "killed-every-time")
    Event.objects.filter(pk=event.pk).update(attempts=settings.GAMBIT_EVENT_MAX_ATTEMPTS)
    events.process_event(event_id=event.pk)
    event.refresh_from_db()
    assert (event.state, event.failure_reason, event.attempts, event.error) == (
        "failed",
        "attempts_exhausted",
        5,
        "No attempt finished: each one was stopped by the hard time limit or lost with its worker.",
    )
    assert not ChainRun.objects.exists()


@pytest.mark.django_db
def test_dead_letters_are_listed_with_their_reason_and_an_approver_runs_them_again(
    client, eager, django_capture_on_commit_callbacks
):
    build_quiz_lottery()
    dead = accept("eve", "dead")
    finished = accept("fay", "fine")
    events.process_event(event_id=finished.pk)
    Event.objects.filter(pk=dead.pk).update(
        state="failed", failure_reason="attempts_exhausted", attempts=5, error=TIME_LIMIT_ERROR
    )
    changelist = reverse("admin:activities_event_changelist")
    client.force_login(role_user("Operator"))
    page = client.get(changelist, {"failure_reason__exact": "attempts_exhausted"}).content.decode()
    assert str(dead.pk) in page
    assert str(finished.pk) not in page
    assert "no attempt succeeded, attempts used up" in page
    assert TIME_LIMIT_ERROR in page
    assert 'value="rerun"' not in page  # operators look; approvers run again
    client.force_login(role_user("Approver"))
    page = client.get(changelist, {"failure_reason__exact": "attempts_exhausted"}).content.decode()
    assert 'value="rerun"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist,
            {"action": "rerun", "_selected_action": [dead.pk, finished.pk]},
            follow=True,
        )
    assert "1 failed event will run again." in response.content.decode()
    dead.refresh_from_db()
    assert (dead.state, dead.attempts, dead.failure_reason, dead.error) == ("done", 1, "", "")
    assert ChainRun.objects.get(event=dead).outcome == RunOutcome.GRANTED
    assert Event.objects.get(pk=finished.pk).attempts == 1

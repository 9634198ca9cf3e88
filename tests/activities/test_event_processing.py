"""One transaction per event on real PostgreSQL: duplicate deliveries, retries."""

import threading

import pytest
from django.db import OperationalError, connection

from activities.models import ChainRun, Event, EventState, Grant, RunOutcome
from activities.services import events, waiters
from activities.tasks import run_event_task
from tests.factories import build_quiz_lottery, make_api_key


def accept(customer: str, score: int, key: str) -> Event:
    event, _ = events.accept_event(
        client=make_api_key()[0],
        idempotency_key=key,
        channel_code="quiz.completed",
        customer_external_id=customer,
        payload={"score": score},
    )
    return event


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_event_at_once_run_it_once():
    build_quiz_lottery()
    event = accept("ann", 90, "twice")
    start = threading.Barrier(2)
    errors = []

    def deliver():
        try:
            start.wait()
            events.process_event(event_id=event.pk)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Event.objects.get(pk=event.pk).state == EventState.DONE
    runs = ChainRun.objects.filter(event=event)
    assert [run.outcome for run in runs] == [RunOutcome.GRANTED]
    assert Grant.objects.filter(run__event=event).count() == 1


@pytest.mark.django_db
def test_a_failed_attempt_marks_the_event_running_until_a_retry_succeeds():
    build_quiz_lottery()
    event = accept("bea", 90, "flaky")
    events.record_retry(event_id=event.pk, error="server closed the connection unexpectedly")
    event.refresh_from_db()
    assert (event.state, event.error) == (
        EventState.RUNNING,
        "server closed the connection unexpectedly",
    )
    events.process_event(event_id=event.pk)
    event.refresh_from_db()
    assert (event.state, event.error) == (EventState.DONE, "")
    assert ChainRun.objects.get(event=event).outcome == RunOutcome.GRANTED


@pytest.mark.django_db
def test_an_event_whose_every_attempt_fails_ends_failed_with_the_error(monkeypatch):
    build_quiz_lottery()
    event = accept("bob", 90, "doomed")
    attempts = []

    def database_down(*, event_id):
        attempts.append(event_id)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(events, "process_event", database_down)
    run_event_task.apply(args=[str(event.pk)])  # eager: the retries run inline
    event.refresh_from_db()
    assert len(attempts) == run_event_task.max_retries + 1
    assert (event.state, event.error) == (
        EventState.FAILED,
        "server closed the connection unexpectedly",
    )


@pytest.mark.django_db
def test_a_rejected_run_leaves_the_event_done_and_nothing_granted():
    build_quiz_lottery()
    event = accept("cid", 10, "low")
    events.process_event(event_id=event.pk)
    run = ChainRun.objects.get(event=event)
    assert (run.outcome, run.reason) == (RunOutcome.REJECTED, "rule_not_met")
    assert Event.objects.get(pk=event.pk).state == EventState.DONE
    assert not Grant.objects.exists()


def _accept_quiz(*, client, key: str, awaited: bool) -> Event:
    event, _ = events.accept_event(
        client=client,
        idempotency_key=key,
        channel_code="quiz.completed",
        customer_external_id="cleo",
        payload={"score": 90},
        awaited=awaited,
    )
    return event


def _process_and_commit(event: Event, capture) -> None:
    with capture(execute=True):
        events.process_event(event_id=event.pk)


@pytest.mark.django_db
def test_the_worker_announces_a_finished_event_only_when_a_request_waits_for_it(
    django_capture_on_commit_callbacks,
):
    build_quiz_lottery()
    client = make_api_key()[0]
    unwatched = _accept_quiz(client=client, key="fire-and-forget", awaited=False)
    watched = _accept_quiz(client=client, key="prefer-wait", awaited=True)

    _process_and_commit(unwatched, django_capture_on_commit_callbacks)
    _process_and_commit(watched, django_capture_on_commit_callbacks)

    assert waiters.wait_for(event_id=unwatched.pk, timeout=0.05) is False
    assert waiters.wait_for(event_id=watched.pk, timeout=0.05) is True


@pytest.mark.django_db
def test_a_repeated_request_that_waits_gets_the_announcement_of_the_first_ones_event(
    django_capture_on_commit_callbacks,
):
    build_quiz_lottery()
    client = make_api_key()[0]
    first = _accept_quiz(client=client, key="retried", awaited=False)
    repeat = _accept_quiz(client=client, key="retried", awaited=True)
    assert (repeat.pk, Event.objects.get(pk=first.pk).awaited) == (first.pk, True)

    _process_and_commit(first, django_capture_on_commit_callbacks)

    assert waiters.wait_for(event_id=first.pk, timeout=0.05) is True
    # Once the event is finished a waiting repeat finds it done and marks nothing.
    done = _accept_quiz(client=client, key="fire-and-forget-done", awaited=False)
    _process_and_commit(done, django_capture_on_commit_callbacks)
    _accept_quiz(client=client, key="fire-and-forget-done", awaited=True)
    assert Event.objects.get(pk=done.pk).awaited is False

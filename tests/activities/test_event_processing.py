"""One transaction per event on real PostgreSQL: duplicate deliveries, retries, the row helpers."""

import threading

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models.signals import post_save

from activities.models import ChainRun, Event, EventState, Grant, Participation, RunOutcome
from activities.services import events
from activities.tasks import run_event_task
from core.db.rows import insert, insert_or_lock, insert_unless_taken, save_columns
from tests.factories import CustomerFactory, build_quiz_lottery, make_api_key


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


@pytest.mark.django_db
def test_insert_or_lock_creates_then_returns_the_stored_row():
    activity = build_quiz_lottery()
    customer = CustomerFactory()
    created = insert_or_lock(
        Participation,
        unique=("activity_id", "customer_id"),
        activity_id=activity.pk,
        customer_id=customer.pk,
    )
    Participation.objects.filter(pk=created.pk).update(data={"level": 3})
    again = insert_or_lock(
        Participation,
        unique=("activity_id", "customer_id"),
        activity_id=activity.pk,
        customer_id=customer.pk,
        data={"level": 0},
    )
    assert (again.pk, again.data, again._state.adding) == (created.pk, {"level": 3}, False)
    assert Participation.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_insert_or_lock_waits_for_the_holder_and_sees_its_commit():
    activity = build_quiz_lottery()
    customer = CustomerFactory()
    unique = {"activity_id": activity.pk, "customer_id": customer.pk}
    holder_has_lock = threading.Event()
    seen = []

    def second():
        holder_has_lock.wait()
        with transaction.atomic():
            row = insert_or_lock(Participation, unique=("activity_id", "customer_id"), **unique)
            seen.append(row.data)
        connection.close()

    thread = threading.Thread(target=second)
    thread.start()
    with transaction.atomic():
        row = insert_or_lock(Participation, unique=("activity_id", "customer_id"), **unique)
        holder_has_lock.set()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # blocked on the row lock
        Participation.objects.filter(pk=row.pk).update(data={"by": "holder"})
    thread.join(timeout=10)
    assert seen == [{"by": "holder"}]


def new_event_values() -> dict:
    build_quiz_lottery()
    channel = Event._meta.get_field("channel").related_model.objects.get(code="quiz.completed")
    return {
        "client_id": make_api_key()[0].pk,
        "idempotency_key": "k",
        "request_hash": "",
        "channel_id": channel.pk,
        "customer_id": CustomerFactory().pk,
    }


@pytest.fixture
def event_saves():
    """(pk, created, update_fields) of every post_save an Event sends during the test."""
    saved = []

    def receiver(sender, instance, created, update_fields, **kwargs):
        saved.append((instance.pk, created, update_fields))

    post_save.connect(receiver, sender=Event, weak=False)
    yield saved
    post_save.disconnect(receiver, sender=Event)


@pytest.mark.django_db
def test_insert_unless_taken_inserts_once_and_signals_once(event_saves):
    values = new_event_values()
    first = insert_unless_taken(Event, **values)
    second = insert_unless_taken(Event, **values)
    assert first is not None and second is None
    assert event_saves == [(first.pk, True, None)]
    assert list(Event.objects.values_list("pk", flat=True)) == [first.pk]


@pytest.mark.django_db
def test_insert_and_save_columns_write_like_create_and_save_and_signal_alike(event_saves):
    event = insert(Event, **new_event_values(), payload={"score": 70})
    event.finish()
    event.error = "kept"
    event.attempts = 3  # not among the saved columns
    save_columns(event, "state", "error")
    stored = Event.objects.get()
    assert (stored.pk, stored.payload, stored.state, stored.error, stored.attempts) == (
        event.pk,
        {"score": 70},
        EventState.DONE,
        "kept",
        0,
    )
    assert stored.created_at is not None
    assert event_saves == [(event.pk, True, None), (event.pk, False, frozenset({"state", "error"}))]

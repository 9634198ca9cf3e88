"""The row writers: single statements that write like the ORM, for models whose writes are
nothing more than that statement; every other model is refused before anything is written."""

# The models defined here only exist to be refused; none is ever displayed.
# ruff: noqa: DJ008

import threading

import pytest
from django.db import connection, models, transaction
from django.db.models.functions import Now
from django.db.models.signals import post_save, pre_save
from django.test.utils import isolate_apps
from django_fsm import ConcurrentTransitionMixin, FSMField

from activities.models import Event, EventState, Grant, Participation
from core.db.rows import UnwritableModel, insert_or_lock, insert_unless_taken, save_columns
from tests.factories import CustomerFactory, build_quiz_lottery, make_api_key

WRITERS = {
    "insert_or_lock": lambda model: insert_or_lock(model, unique=("id",), id=1),
    "insert_unless_taken": lambda model: insert_unless_taken(model, id=1),
    "save_columns": lambda model: save_columns(model(id=1), "id"),
}


@pytest.fixture(params=sorted(WRITERS))
def write(request):
    return WRITERS[request.param]


@isolate_apps("core")
def test_a_model_with_a_save_of_its_own_is_refused(write):
    class Audited(models.Model):
        class Meta:
            app_label = "core"

        def save(self, *args, **kwargs):
            super().save(*args, **kwargs)

    with pytest.raises(
        UnwritableModel,
        match=r"^Audited has a save\(\) of its own \(.*Audited\.save\)\. The row writers would "
        r"skip that; write Audited with the ORM\.$",
    ):
        write(Audited)


@isolate_apps("core")
def test_a_django_fsm_concurrent_transition_model_is_refused(write):
    class Guarded(ConcurrentTransitionMixin, models.Model):
        state = FSMField(default="new")

        class Meta:
            app_label = "core"

    with pytest.raises(
        UnwritableModel,
        match=r"^Guarded is a django-fsm ConcurrentTransitionMixin model: its save\(\) checks the "
        r"state it was loaded in and remembers the new one\.",
    ):
        write(Guarded)


def test_grants_are_refused_so_they_go_through_the_orm():
    with pytest.raises(UnwritableModel, match=r"^Grant is a django-fsm ConcurrentTransitionMixin"):
        insert_unless_taken(Grant, idempotency_key="k", quantity=1, remaining=1)


@isolate_apps("core")
def test_a_model_with_a_database_default_is_refused(write):
    class Stamped(models.Model):
        stamped_at = models.DateTimeField(db_default=Now())

        class Meta:
            app_label = "core"

    with pytest.raises(
        UnwritableModel,
        match=r"^Stamped has fields the database defaults \(db_default\): \['stamped_at'\]\.",
    ):
        write(Stamped)


@isolate_apps("core")
def test_a_model_with_a_generated_field_is_refused(write):
    class Line(models.Model):
        quantity = models.IntegerField(default=1)
        doubled = models.GeneratedField(
            expression=models.F("quantity") * 2,
            output_field=models.IntegerField(),
            db_persist=True,
        )

        class Meta:
            app_label = "core"

    with pytest.raises(
        UnwritableModel,
        match=r"^Line has fields the database computes \(GeneratedField\): \['doubled'\]\.",
    ):
        write(Line)


@isolate_apps("core")
def test_a_model_with_save_receivers_is_refused(write):
    class Watched(models.Model):
        class Meta:
            app_label = "core"

    def receiver(**kwargs):
        pass

    post_save.connect(receiver, sender=Watched, weak=False)
    try:
        with pytest.raises(UnwritableModel, match=r"^Watched has pre_save/post_save receivers\."):
            write(Watched)
    finally:
        post_save.disconnect(receiver, sender=Watched)


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


def record_save_signals(monkeypatch) -> list:
    """From now on, the sender of every pre_save/post_save sent, which is not delivered."""
    sent: list = []
    for signal in (pre_save, post_save):
        monkeypatch.setattr(signal, "send", lambda sender, **kwargs: sent.append(sender))
    return sent


@pytest.mark.django_db
def test_insert_unless_taken_inserts_once_and_sends_no_signal(monkeypatch):
    values = new_event_values()
    sent = record_save_signals(monkeypatch)
    first = insert_unless_taken(Event, **values)
    second = insert_unless_taken(Event, **values)
    assert first is not None and second is None
    assert (first._state.adding, first._state.db) == (False, "default")
    assert list(Event.objects.values_list("pk", flat=True)) == [first.pk]
    assert sent == []


@pytest.mark.django_db
def test_save_columns_writes_like_save_with_update_fields_and_sends_no_signal(monkeypatch):
    event = insert_unless_taken(Event, **new_event_values(), payload={"score": 70})
    event.finish()
    event.error = "kept"
    event.attempts = 3  # not among the saved columns
    sent = record_save_signals(monkeypatch)
    save_columns(event, "state", "error")
    assert sent == []
    stored = Event.objects.get()
    assert (stored.pk, stored.payload, stored.state, stored.error, stored.attempts) == (
        event.pk,
        {"score": 70},
        EventState.DONE,
        "kept",
        0,
    )
    assert stored.created_at is not None


@pytest.mark.django_db
def test_save_columns_returns_the_column_as_the_row_holds_it_after_the_update():
    event = insert_unless_taken(Event, **new_event_values())
    # Another writer marks the row after this instance was read.
    Event.objects.filter(pk=event.pk).update(awaited=True)
    event.finish()
    assert (event.awaited, save_columns(event, "state", returning="awaited")) == (False, True)
    Event.objects.filter(pk=event.pk).delete()
    assert save_columns(event, "state", returning="awaited") is None

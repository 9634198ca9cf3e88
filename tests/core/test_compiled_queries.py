"""Querysets compiled once and run with new values give what the queryset itself gives."""

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.db.models import CharField, Count, Q, Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activities.models import Event
from core.db.compiled_queries import (
    CompiledQuery,
    CompiledQueryDiverged,
    UncompilableQuery,
    _marker_forms,
)
from segments.models import Customer
from tests.factories import CustomerFactory, build_quiz_lottery, make_api_key


@pytest.mark.django_db
def test_rows_match_the_queryset_for_every_value():
    for external_id in ("ann", "bob", "O'Brien; --"):
        CustomerFactory(external_id=external_id, attributes={"vip": external_id == "bob"})
    query = CompiledQuery(
        lambda external_id: Customer.objects.filter(external_id=external_id).values_list(
            "pk", "attributes"
        ),
        external_id=str,
    )
    for external_id in ("ann", "bob", "O'Brien; --", "nobody"):
        expected = [
            list(row)
            for row in Customer.objects.filter(external_id=external_id).values_list(
                "pk", "attributes"
            )
        ]
        assert query.rows(external_id=external_id) == expected
    # The JSON column arrives decoded, as the queryset gives it.
    assert query.rows(external_id="bob")[0][1] == {"vip": True}


@pytest.mark.django_db
def test_instances_carry_related_objects_and_annotations_without_more_queries():
    build_quiz_lottery()
    client = make_api_key()[0]
    ann = CustomerFactory(external_id="ann")
    channel = Event._meta.get_field("channel").related_model.objects.get(code="quiz.completed")
    event = Event.objects.create(
        client=client,
        idempotency_key="k1",
        request_hash="",
        channel=channel,
        customer=ann,
        payload={"score": 80},
    )
    query = CompiledQuery(
        lambda event_id: (
            Event.objects.select_related("customer")
            .annotate(runs_so_far=Count("runs"))
            .filter(pk=event_id)
        ),
        event_id=uuid.UUID,
    )
    query.instances(event_id=uuid.uuid4())  # compiled here, before the count below
    with CaptureQueriesContext(connection) as queries:
        [found] = query.instances(event_id=event.pk)
        assert found.customer.external_id == "ann"
    assert len(queries) == 1
    assert (found.pk, found.payload, found.state, found.runs_so_far) == (
        event.pk,
        {"score": 80},
        "pending",
        0,
    )
    assert found._state.adding is False
    assert query.instances(event_id=uuid.uuid4()) == []


@pytest.mark.django_db
def test_the_same_compiled_query_serves_or_filters_with_several_slots():
    ann, bob = CustomerFactory(external_id="ann"), CustomerFactory(external_id="bob")
    query = CompiledQuery(
        lambda external_id, customer_id: (
            Customer.objects.filter(Q(external_id=external_id) | Q(pk=customer_id))
            .order_by("pk")
            .values_list("pk")
        ),
        external_id=str,
        customer_id=int,
    )
    assert query.rows(external_id="bob", customer_id=ann.pk) == [[ann.pk], [bob.pk]]
    assert query.rows(external_id="nobody", customer_id=ann.pk) == [[ann.pk]]
    assert query.rows(external_id="nobody", customer_id=-1) == []


@pytest.mark.django_db
def test_a_column_selected_only_to_order_distinct_rows_is_dropped_as_the_queryset_drops_it():
    CustomerFactory(external_id="b", level="gold")
    CustomerFactory(external_id="a", level="silver")
    query = CompiledQuery(
        lambda customer_id: (
            Customer.objects.filter(pk__gte=customer_id)
            .values_list("level")
            .distinct()
            .order_by("external_id")
        ),
        customer_id=int,
    )
    assert query.rows(customer_id=0) == [["silver"], ["gold"]]


@pytest.mark.django_db
def test_a_slot_the_query_never_uses_is_refused():
    query = CompiledQuery(
        lambda external_id, customer_id: Customer.objects.filter(pk=customer_id),
        external_id=str,
        customer_id=int,
    )
    with pytest.raises(ValueError, match=r"never uses the slots \['external_id'\]"):
        query.rows(external_id="ann", customer_id=1)


def test_a_uuid_slot_is_found_and_bound_in_the_form_the_backend_uses():
    marker = uuid.UUID(int=2**127 + 5)
    value = uuid.uuid4()
    forms = _marker_forms({"event_id": marker})
    # PostgreSQL keeps the UUID among the compiled parameters; SQLite has its hex string.
    assert forms[marker][0] == forms[marker.hex][0] == "event_id"
    assert forms[marker][1](value) == value
    assert forms[marker.hex][1](value) == forms[marker.hex][1](str(value)) == value.hex


@pytest.mark.django_db
def test_the_shadow_statements_are_not_counted_as_the_path_s_own(settings):
    ann = CustomerFactory(external_id="ann")
    query = CompiledQuery(
        lambda external_id: Customer.objects.filter(external_id=external_id).values_list("pk"),
        external_id=str,
    )
    assert settings.GAMBIT_COMPILED_QUERY_SHADOW is True
    with CaptureQueriesContext(connection) as queries:
        assert query.rows(external_id="ann") == [[ann.pk]]
    # Compiling runs no statement, the call one; the shadow's read is left out.
    assert len(queries) == 1


def test_prefetch_related_is_refused():
    query = CompiledQuery(
        lambda customer_id: Customer.objects.filter(pk=customer_id).prefetch_related("tags"),
        customer_id=int,
    )
    with pytest.raises(UncompilableQuery, match=r"^prefetch_related\(\) runs further queries"):
        query.instances(customer_id=1)


@pytest.mark.parametrize(
    ("shape", "iterable"),
    [
        (lambda queryset: queryset.values("pk"), "ValuesIterable"),
        (lambda queryset: queryset.values_list("pk", flat=True), "FlatValuesListIterable"),
        (lambda queryset: queryset.values_list("pk", named=True), "NamedValuesListIterable"),
    ],
)
def test_dict_flat_and_named_results_are_refused(shape, iterable):
    query = CompiledQuery(
        lambda customer_id: shape(Customer.objects.filter(pk=customer_id)), customer_id=int
    )
    with pytest.raises(UncompilableQuery, match=rf"\({iterable}\)\. Compile a values_list\(\)"):
        query.rows(customer_id=1)


@pytest.mark.django_db
def test_a_related_manager_s_queryset_is_refused():
    ann = CustomerFactory(external_id="ann")
    query = CompiledQuery(lambda event_id: ann.events.filter(pk=event_id), event_id=uuid.UUID)
    with pytest.raises(UncompilableQuery, match=r"^A related manager's queryset"):
        query.instances(event_id=uuid.uuid4())


def test_rows_and_instances_each_refuse_the_other_shape():
    instances = CompiledQuery(
        lambda customer_id: Customer.objects.filter(pk=customer_id), customer_id=int
    )
    rows = CompiledQuery(
        lambda customer_id: Customer.objects.filter(pk=customer_id).values_list("pk"),
        customer_id=int,
    )
    with pytest.raises(TypeError, match=r"^rows\(\) reads a values_list\(\) queryset"):
        instances.rows(customer_id=1)
    with pytest.raises(TypeError, match=r"^instances\(\) needs a queryset of model instances"):
        rows.instances(customer_id=1)


def test_the_time_read_while_building_is_refused():
    query = CompiledQuery(
        lambda customer_id: Customer.objects.filter(
            pk=customer_id, created_at__gte=timezone.now() - dt.timedelta(days=2)
        ).values_list("pk"),
        customer_id=int,
    )
    with pytest.raises(
        UncompilableQuery,
        match=r"^SQL parameter 0 is datetime\.datetime\(.*\) in one build of the queryset and "
        r"datetime\.datetime\(.*\) in the next: the queryset computes it while it is built",
    ):
        query.rows(customer_id=1)


def test_a_slot_inside_a_larger_value_is_refused():
    query = CompiledQuery(
        lambda prefix: Customer.objects.filter(external_id__startswith=prefix).values_list("pk"),
        prefix=str,
    )
    with pytest.raises(UncompilableQuery, match=r"^SQL parameter 0 is '\\x00compiled-query-slot-0"):
        query.rows(prefix="an")


@pytest.mark.django_db
def test_the_time_as_a_slot_follows_every_call():
    ann = CustomerFactory(external_id="ann")
    query = CompiledQuery(
        lambda customer_id, since: Customer.objects.filter(
            pk=customer_id, created_at__gte=since
        ).values_list("pk"),
        customer_id=int,
        since=dt.datetime,
    )
    assert query.rows(customer_id=ann.pk, since=ann.created_at) == [[ann.pk]]
    later = ann.created_at + dt.timedelta(seconds=1)
    assert query.rows(customer_id=ann.pk, since=later) == []


@pytest.mark.django_db
def test_a_constant_json_parameter_is_not_taken_for_drift():
    ann = CustomerFactory(external_id="ann", quality_flags=[{"field": "birthday"}])
    CustomerFactory(external_id="bob")
    query = CompiledQuery(
        lambda customer_id: (
            Customer.objects.filter(pk__gte=customer_id).exclude(quality_flags=[]).values_list("pk")
        ),
        customer_id=int,
    )
    assert query.rows(customer_id=0) == [[ann.pk]]


@pytest.mark.django_db
def test_shadow_mode_catches_rows_that_diverge(settings):
    """A value the queryset reads while built but that the two compiles cannot see move (a
    setting, module state) is caught by the shadow the first time it moves."""
    ann = CustomerFactory(external_id="ann", level="gold")
    wanted = {"level": "gold"}
    query = CompiledQuery(
        lambda customer_id: Customer.objects.filter(
            pk=customer_id, level=wanted["level"]
        ).values_list("pk", "level"),
        customer_id=int,
    )
    assert query.rows(customer_id=ann.pk) == [[ann.pk, "gold"]]
    wanted["level"] = "silver"
    with pytest.raises(
        CompiledQueryDiverged,
        match=rf"^The compiled query gave \[\[{ann.pk}, 'gold'\]\]; its queryset gives \[\] ",
    ):
        query.rows(customer_id=ann.pk)
    settings.GAMBIT_COMPILED_QUERY_SHADOW = False
    assert query.rows(customer_id=ann.pk) == [[ann.pk, "gold"]]  # what production would get


@pytest.mark.django_db
def test_shadow_mode_compares_the_field_values_of_instances():
    ann = CustomerFactory(external_id="ann")
    label = {"text": "first"}
    query = CompiledQuery(
        lambda customer_id: Customer.objects.filter(pk=customer_id).annotate(
            label=Value(label["text"], output_field=CharField())
        ),
        customer_id=int,
    )
    [found] = query.instances(customer_id=ann.pk)
    assert (found.pk, found.label) == (ann.pk, "first")
    label["text"] = "second"
    with pytest.raises(CompiledQueryDiverged) as diverged:
        query.instances(customer_id=ann.pk)
    assert "'label': 'first'" in str(diverged.value)
    assert "'label': 'second'" in str(diverged.value)

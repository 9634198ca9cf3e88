"""Querysets compiled once and run with new values give what the queryset itself gives."""

import uuid

import pytest
from django.db import connection
from django.db.models import Count, Q
from django.test.utils import CaptureQueriesContext

from activities.models import Event
from core.db.compiled_queries import CompiledQuery, _marker_forms
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
    query.rows(event_id=uuid.uuid4())  # compiled here, before the count below
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

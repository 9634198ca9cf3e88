"""Builders for notification tests: templates, customers in bulk, static segments, broadcasts."""

from __future__ import annotations

from typing import Any

import factory
from django.db import connection

from notifications.models import Broadcast, NotificationTemplate
from segments.models import Customer, Segment, SegmentMember


class NotificationTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationTemplate

    code = factory.Sequence(lambda n: f"template-{n}")
    name = factory.Sequence(lambda n: f"Template {n}")
    channel = "email"
    subject = "Hello {{ customer.name }}"
    body = "Dear {{ customer.name }}, spring is here."


def make_customers(count: int, *, prefix: str = "c", **fields: Any) -> list[int]:
    """`count` customers (external ids prefix-0..), in bulk; returns their ids in order."""
    defaults = {"email_consent": True}
    defaults.update(fields)
    created = []
    for start in range(0, count, 5000):
        rows = [
            Customer(
                external_id=f"{prefix}-{i}",
                name=f"Customer {i}",
                email=f"{prefix}-{i}@example.test",
                **defaults,
            )
            for i in range(start, min(start + 5000, count))
        ]
        created.extend(customer.pk for customer in Customer.objects.bulk_create(rows))
    return created


def make_segment(customer_ids: list[int], *, code: str = "audience") -> Segment:
    """A static segment of exactly these customers (members written in one statement)."""
    segment = Segment.objects.create(code=code, name=code, kind=Segment.Kind.STATIC)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SegmentMember._meta.db_table} (segment_id, customer_id, added_at) "
            "SELECT %s, unnest(%s::bigint[]), now()",
            [segment.pk, list(customer_ids)],
        )
    return segment


class BroadcastFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Broadcast

    name = factory.Sequence(lambda n: f"Broadcast {n}")
    template = factory.SubFactory(NotificationTemplateFactory)
    segment = factory.LazyFunction(
        lambda: make_segment([], code=f"empty-{Segment.objects.count()}")
    )
    frequency_cap = None

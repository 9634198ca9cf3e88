"""Factories for the audience models."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from segments.models import Order, Segment, Tag
from tests.factories import CustomerFactory

__all__ = ["CustomerFactory", "OrderFactory", "SegmentFactory", "TagFactory"]


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"tag-{n}")


class OrderFactory(factory.django.DjangoModelFactory):
    """A pending order; pass `state=` and `paid_at=` for history (protected field: set at
    creation only)."""

    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: f"order-{n}")
    customer = factory.SubFactory(CustomerFactory)
    amount = Decimal("100.00")
    currency = "CNY"
    placed_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    code = factory.Sequence(lambda n: f"segment-{n}")
    name = factory.Sequence(lambda n: f"Segment {n}")
    kind = Segment.Kind.DYNAMIC

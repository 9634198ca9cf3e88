"""Reads over the audience. A segment's members are always one SQL query, never a list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from segments.models import Customer, Segment, SegmentMember
from segments.rules import check_rule, compile_rule


def members_of(segment: Segment, *, now: dt.datetime | None = None) -> QuerySet[Customer]:
    """The customers in `segment` as one query; `now` fixes "today" for order aggregates."""
    if segment.kind == Segment.Kind.STATIC:
        return Customer.objects.filter(
            pk__in=SegmentMember.objects.filter(segment_id=segment.pk).values("customer_id")
        )
    if segment.rule is None:
        # A dynamic segment whose rule was never written selects nobody, never everybody.
        return Customer.objects.none()
    return Customer.objects.filter(compile_rule(check_rule(segment.rule), now=now))


def customer_id_of(*, external_id: str) -> QuerySet[Customer, Any]:
    """The id of the customer with this storefront id, as a one-column query to embed in
    another (no row when the storefront never sent it)."""
    return Customer.objects.filter(external_id=external_id).values("pk")[:1]


def rule_members(*, rule: Any, now: dt.datetime | None = None) -> QuerySet[Customer]:
    """The customers an unsaved dynamic rule selects, as one query (the rule builder's live
    count and sample); RuleError when the rule does not check."""
    return members_of(Segment(kind=Segment.Kind.DYNAMIC, rule=rule), now=now)


def segment_customers(*, segment_id: int, now: dt.datetime | None = None) -> QuerySet[Customer]:
    """The members of the segment, compiled to one query (filter, order, page or
    INSERT ... SELECT it further)."""
    return members_of(Segment.objects.get(pk=segment_id), now=now)


def segment_contains(*, segment_id: int, customer_id: int) -> bool:
    segment = Segment.objects.get(pk=segment_id)
    if segment.kind == Segment.Kind.STATIC:
        return SegmentMember.objects.filter(segment_id=segment_id, customer_id=customer_id).exists()
    return members_of(segment).filter(pk=customer_id).exists()


def segment_customer_id_pages(
    *, segment_id: int, page_size: int = 5000, now: dt.datetime | None = None
) -> Iterator[list[int]]:
    """The members' ids in ascending keyset pages: constant memory, one indexed query a page.
    "Today" is fixed once, so a long walk sees one consistent definition."""
    members = segment_customers(segment_id=segment_id, now=now).order_by("pk")
    last = 0
    while True:
        ids = list(members.filter(pk__gt=last).values_list("pk", flat=True)[:page_size])
        if ids:
            yield ids
        if len(ids) < page_size:
            return
        last = ids[-1]

"""Segments: rule checks, counts, samples, static members and membership snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.rules import RuleError
from segments.errors import InvalidSegmentRule
from segments.models import Customer, CustomerTag, Segment, SegmentMember, SegmentSnapshot
from segments.rules import check_rule
from segments.selectors import members_of


def validate_segment_rule(*, kind: str, rule: Any) -> None:
    """Raise InvalidSegmentRule (details: path, code, message) unless `rule` fits `kind`."""
    if kind == Segment.Kind.STATIC:
        if rule is not None:
            message = _("A static segment has members, not a rule: leave the rule empty.")
            raise InvalidSegmentRule(
                message, details=[{"path": "", "code": "invalid_rule", "message": message}]
            )
        return
    if rule is None:
        message = _("A dynamic segment needs a rule.")
        raise InvalidSegmentRule(
            message, details=[{"path": "", "code": "required", "message": message}]
        )
    try:
        check_rule(rule)
    except RuleError as error:
        raise InvalidSegmentRule(
            str(error),
            details=[{"path": error.path or "rule", "code": error.code, "message": error.message}],
        ) from None


def count_segment(*, segment_id: int) -> int:
    """Count the members now (one query) and keep the count as the segment's cached count."""
    segment = Segment.objects.get(pk=segment_id)
    count = members_of(segment).count()
    Segment.objects.filter(pk=segment_id).update(member_count=count, counted_at=timezone.now())
    return count


def sample_segment(*, segment_id: int, size: int = 20) -> list[Customer]:
    segment = Segment.objects.get(pk=segment_id)
    return list(members_of(segment).order_by("pk")[:size])


def refresh_snapshot(*, segment_id: int) -> int:
    """Rewrite a dynamic segment's snapshot from its rule in one INSERT ... SELECT, under the
    segment's row lock so two refreshes never interleave; returns the member count."""
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment_id)
        now = timezone.now()
        if segment.kind == Segment.Kind.STATIC:
            count = SegmentMember.objects.filter(segment_id=segment_id).count()
        else:
            SegmentSnapshot.objects.filter(segment_id=segment_id).delete()
            members_sql, params = members_of(segment, now=now).values("pk").query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {SegmentSnapshot._meta.db_table} (segment_id, customer_id) "  # noqa: S608
                    f"SELECT %s, members.* FROM ({members_sql}) AS members",
                    [segment_id, *params],
                )
                count = cursor.rowcount
        Segment.objects.filter(pk=segment_id).update(
            member_count=count, counted_at=now, snapshot_at=now
        )
    return count


def add_static_members(*, segment_id: int, external_ids: Iterable[str]) -> tuple[int, list[str]]:
    """Add customers by storefront id to a static segment; returns (added, unknown ids)."""
    wanted = sorted({value.strip() for value in external_ids if value.strip()})
    segment = _static(segment_id)
    found = dict(Customer.objects.filter(external_id__in=wanted).values_list("external_id", "pk"))
    created = SegmentMember.objects.bulk_create(
        [SegmentMember(segment=segment, customer_id=pk) for pk in found.values()],
        ignore_conflicts=True,
        batch_size=5000,
    )
    Segment.objects.filter(pk=segment_id).update(updated_at=timezone.now())
    return len(created), [value for value in wanted if value not in found]


def add_static_members_by_tags(*, segment_id: int, tag_codes: Iterable[str]) -> int:
    """Add every customer carrying any of the tags, in one INSERT ... SELECT."""
    segment = _static(segment_id)
    tagged = (
        CustomerTag.objects.filter(tag__code__in=sorted(set(tag_codes)))
        .values("customer_id")
        .distinct()
    )
    tagged_sql, params = tagged.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SegmentMember._meta.db_table} (segment_id, customer_id, added_at) "  # noqa: S608
            f"SELECT %s, tagged.customer_id, %s FROM ({tagged_sql}) AS tagged "
            "ON CONFLICT (segment_id, customer_id) DO NOTHING",
            [segment.pk, timezone.now(), *params],
        )
        return cursor.rowcount


def _static(segment_id: int) -> Segment:
    segment = Segment.objects.get(pk=segment_id)
    if segment.kind != Segment.Kind.STATIC:
        raise InvalidSegmentRule(
            _("Only a static segment has a member list; a dynamic one follows its rule."),
            details=[{"path": "kind", "code": "not_static", "message": segment.kind}],
        )
    return segment

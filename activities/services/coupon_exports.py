"""Coupons and their redemption answers as CSV, streamed in chunks (never a whole table in
memory). Cells a spreadsheet would run as formulas are escaped (`core.text.formula_safe`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from activities.models import CouponRedemption, Grant
from core.text import formula_safe

GRANT_COLUMNS = (
    "code", "state", "activity", "benefit", "customer", "value", "valid_from", "valid_until",
    "order", "redeemed_at", "issued_at",
)  # fmt: skip
REDEMPTION_COLUMNS = ("at", "action", "code", "customer", "order", "status", "answer")
CHUNK = 2000


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return formula_safe(str(value))


def _stream(header: tuple[str, ...], rows: Iterable[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow(header)
    yield flush()
    for row in rows:
        writer.writerow([_cell(value) for value in row])
        yield flush()


def _answer(status: int, body: dict[str, Any]) -> str:
    """The coupon's state after a success, the refusal's stable code otherwise."""
    return str(body.get("state") if status == 200 else body.get("code"))


def export_grants_csv(*, grants: QuerySet[Grant]) -> Iterator[str]:
    rows = (
        grants.order_by("pk")
        .values_list(
            "code",
            "state",
            "activity__code",
            "benefit__code",
            "customer__external_id",
            "value",
            "valid_from",
            "valid_until",
            "order",
            "redeemed_at",
            "created_at",
        )
        .iterator(chunk_size=CHUNK)
    )
    return _stream(GRANT_COLUMNS, (list(row) for row in rows))


def export_redemptions_csv(*, grants: QuerySet[Grant]) -> Iterator[str]:
    rows = (
        CouponRedemption.objects.filter(grant__in=grants.values("pk"))
        .order_by("pk")
        .values_list(
            "created_at",
            "action",
            "grant__code",
            "grant__customer__external_id",
            "request",
            "status",
            "response",
        )
        .iterator(chunk_size=CHUNK)
    )
    return _stream(
        REDEMPTION_COLUMNS,
        (
            [at, action, code, customer, request.get("order", ""), status, _answer(status, body)]
            for at, action, code, customer, request, status, body in rows
        ),
    )

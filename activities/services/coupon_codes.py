"""Coupon codes and validity: generated codes, the uploaded pool, and when a coupon can be used.

Generated codes draw from `secrets` over an alphabet without look-alikes (no 0/O, 1/I/L), so a
customer can read one aloud and nobody can guess the next. Uniqueness is the grant's unique
constraint: at the default 12 characters (31**12, about 7.9e17) a collision among a million
coupons has a chance near 6e-7, and the one that collides is retried, never issued twice.

A pool benefit hands out uploaded codes, each at most once: a claim is a
`FOR UPDATE SKIP LOCKED` pick of free codes flipped in the same statement, so concurrent claims
never see the same row. Uploading adds to the stock as many units as new codes, so the stock
is always the number of codes still free.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from psycopg import sql

from activities.engine.cache import CouponSpec
from activities.models import Benefit, BenefitKind, CodeSource, CouponCode
from core.errors import InvalidConfiguration

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
POOL_CODE = re.compile(r"[A-Z0-9][A-Z0-9_-]{3,63}")
UPLOAD_BATCH = 5000
MAX_UPLOAD_LINE = 256


# Random bytes map onto the alphabet by a translation table: the 248 lowest values (8 x 31)
# each to one character, the rest dropped, so every character is equally likely.
_USABLE = 256 - 256 % len(ALPHABET)
_TO_ALPHABET = bytes(ord(ALPHABET[value % len(ALPHABET)]) for value in range(256))
_UNUSABLE = bytes(range(_USABLE, 256))


def _random_characters(count: int) -> str:
    out = b""
    while len(out) < count:
        raw = secrets.token_bytes(count - len(out) + count // 16 + 8)
        out += raw.translate(_TO_ALPHABET, _UNUSABLE)
    return out[:count].decode()


def generate_code(*, prefix: str, length: int) -> str:
    return prefix + _random_characters(length)


def generate_codes(*, spec: CouponSpec, count: int) -> list[str]:
    """`count` distinct fresh codes (distinct within the batch; the table checks the rest),
    from one draw of random bytes."""
    codes: set[str] = set()
    while len(codes) < count:
        missing = count - len(codes)
        characters = _random_characters(missing * spec.length)
        codes.update(
            spec.prefix + characters[start : start + spec.length]
            for start in range(0, len(characters), spec.length)
        )
    return list(codes)


def normalize(code: str) -> str:
    """What the customer typed, as stored: codes are upper case, spaces around them dropped."""
    return code.strip().upper()


def validity(
    *, spec: CouponSpec, timezone_name: str, issued_at: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(valid_from, valid_until) of a coupon issued at `issued_at`.

    `valid_days` counts the day of issue in the activity's zone and ends at the local midnight
    after the last day (1 = the end of the issue day); with a fixed end too, the earlier wins.
    """
    until = spec.valid_until
    if spec.valid_days is not None:
        issue_day = issued_at.astimezone(ZoneInfo(timezone_name)).date()
        midnight = local_midnight(issue_day + dt.timedelta(days=spec.valid_days), timezone_name)
        until = midnight if until is None else min(until, midnight)
    return spec.valid_from, until


def local_midnight(day: dt.date, timezone_name: str) -> dt.datetime:
    """The instant `day` begins in the zone: where a validity starts, and where the one that
    ends with the day before stops (a midnight skipped by a clock change resolves to the
    first instant of the day)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(timezone_name))


def first_and_last_day(
    *, valid_from: dt.datetime | None, valid_until: dt.datetime | None, timezone_name: str
) -> tuple[dt.date | None, dt.date | None]:
    """Fixed validity as the days an operator sees in the zone: the day it starts and the
    last whole day before it stops (the inverse of `local_midnight`)."""
    zone = ZoneInfo(timezone_name)
    first = valid_from.astimezone(zone).date() if valid_from is not None else None
    last = (
        (valid_until.astimezone(zone) - dt.timedelta(microseconds=1)).date()
        if valid_until is not None
        else None
    )
    return first, last


def coupon_terms(
    *, spec: CouponSpec, benefit_id: int, timezone_name: str, now: dt.datetime
) -> tuple[str | None, dt.datetime | None, dt.datetime | None]:
    """(code, valid_from, valid_until) for one coupon; the code is None when the pool is empty."""
    if spec.from_pool:
        claimed = claim_pool_codes(benefit_id=benefit_id, count=1)
        code = claimed[0] if claimed else None
    else:
        code = generate_code(prefix=spec.prefix, length=spec.length)
    valid_from, valid_until = validity(spec=spec, timezone_name=timezone_name, issued_at=now)
    return code, valid_from, valid_until


def claim_pool_codes(*, benefit_id: int, count: int) -> list[str]:
    """Flip up to `count` free codes of the pool to issued and return them (call inside the
    transaction that issues them: a rollback frees them again)."""
    if count <= 0:
        return []
    table = sql.Identifier(CouponCode._meta.db_table)
    statement = sql.SQL(
        "UPDATE {table} SET {issued} = true WHERE {id} IN ("
        " SELECT {id} FROM {table} WHERE {benefit} = %s AND NOT {issued}"
        " ORDER BY {id} LIMIT %s FOR UPDATE SKIP LOCKED"
        ") RETURNING {code}"
    ).format(
        table=table,
        id=sql.Identifier(CouponCode._meta.pk.column),
        issued=sql.Identifier(CouponCode._meta.get_field("issued").column),
        benefit=sql.Identifier(CouponCode._meta.get_field("benefit").column),
        code=sql.Identifier(CouponCode._meta.get_field("code").column),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(None), [benefit_id, count])
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class UploadResult:
    added: int
    duplicates: int
    rejected: list[tuple[int, str]]


def read_codes(stream: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, code) from a CSV whose first column is the code; a header is skipped."""
    for number, row in enumerate(csv.reader(line[:MAX_UPLOAD_LINE] for line in stream), 1):
        if not row or not row[0].strip():
            continue
        code = normalize(row[0])
        if number == 1 and code in {"CODE", "COUPON", "COUPON_CODE"}:
            continue
        yield number, code


def upload_pool(*, benefit: Benefit, data: bytes) -> UploadResult:
    """Add the CSV's codes to the pool of a pool coupon benefit; its stock grows by the codes
    that were new. Codes already anywhere in Gambit are counted as duplicates, bad ones are
    listed with their line."""
    if benefit.kind != BenefitKind.COUPON or benefit.code_source != CodeSource.POOL:
        raise InvalidConfiguration(
            _("Only a coupon benefit whose codes come from a pool takes uploaded codes.")
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidConfiguration(_("The file is not UTF-8 text.")) from error
    rejected: list[tuple[int, str]] = []
    batch: list[str] = []
    added = seen = 0
    with transaction.atomic():
        for number, code in read_codes(io.StringIO(text)):
            if not POOL_CODE.fullmatch(code):
                rejected.append((number, code[:64]))
                continue
            seen += 1
            batch.append(code)
            if len(batch) >= UPLOAD_BATCH:
                added += _insert_codes(benefit_id=benefit.pk, codes=batch)
                batch = []
        added += _insert_codes(benefit_id=benefit.pk, codes=batch)
        Benefit.objects.filter(pk=benefit.pk).update(
            stock_total=Coalesce(F("stock_total"), Value(0)) + added,
            stock_remaining=Coalesce(F("stock_remaining"), Value(0)) + added,
        )
    return UploadResult(added=added, duplicates=seen - added, rejected=rejected)


def _insert_codes(*, benefit_id: int, codes: list[str]) -> int:
    """Insert the batch, skipping codes that exist; returns how many went in."""
    if not codes:
        return 0
    statement = sql.SQL(
        "INSERT INTO {table} ({benefit}, {code}, {issued})"
        " SELECT %s, code, false FROM unnest(%s::text[]) AS batch(code)"
        " ON CONFLICT ({code}) DO NOTHING"
    ).format(
        table=sql.Identifier(CouponCode._meta.db_table),
        benefit=sql.Identifier(CouponCode._meta.get_field("benefit").column),
        code=sql.Identifier(CouponCode._meta.get_field("code").column),
        issued=sql.Identifier(CouponCode._meta.get_field("issued").column),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(None), [benefit_id, codes])
        return cursor.rowcount

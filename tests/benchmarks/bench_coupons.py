"""Issue 17 benchmark: coupons as assets, N customers (default 100,000; GAMBIT_BENCH_COUPONS).

1. Issuing one coupon to each of N customers of a static segment through the real service
   (`coupon_issue.issue_next_page`, pages of GAMBIT_ISSUE_PAGE_SIZE, codes from `secrets`),
   beside a plain PostgreSQL COPY of the same N rows into a table with the grants table's
   columns, indexes and foreign keys, in the same run: rows/s of each and their ratio
   (target >= 0.3x).
   The issuing process's resident memory before the issue and after every page (flat
   memory: 100k against 1M), and the codes' distinctness over all N.
2. Redemption latency: p50/p99 of `redemptions.redeem_coupon` over distinct codes, one
   session, sequential (the service the API view calls, row lock and answer row included).
3. Expiry of the N coupons in batches: rows/s and the longest batch (how long any grant row
   stays locked).

Usage: GAMBIT_BENCH_COUPONS=1000000 .venv/bin/python tests/benchmarks/bench_coupons.py
(GAMBIT_BENCH_COUPON_LIMIT=1 gives the benefit a per-customer limit: each page also counts
its members in the limit counter a chain's grant moves.)
"""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DB_NAME = "gambit_bench_coupons"
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "tests.benchmarks.settings",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
    "DJANGO_LOG_LEVEL": "ERROR",
}
os.environ.update(BENCH_ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from activities.models import Activity, Benefit, Grant, StrategyTemplate  # noqa: E402
from activities.services import (  # noqa: E402
    approvals,
    coupon_codes,
    coupon_expiry,
    coupon_issue,
    redemptions,
)
from segments.models import Customer, Segment, SegmentMember  # noqa: E402

CUSTOMERS = int(os.environ.get("GAMBIT_BENCH_COUPONS", "100000"))
REDEMPTIONS = int(os.environ.get("GAMBIT_BENCH_REDEMPTIONS", "2000"))
# A per-customer limit makes every page count its members in the limit counter too.
LIMIT = (
    int(os.environ["GAMBIT_BENCH_COUPON_LIMIT"])
    if "GAMBIT_BENCH_COUPON_LIMIT" in os.environ
    else None
)


def reset_database() -> None:
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB_NAME], check=True
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)
    call_command("migrate", verbosity=0)


def make_audience(count: int) -> Segment:
    """N bare customers and a static segment of all of them, each in one statement."""
    segment = Segment.objects.create(code="everyone", name="everyone", kind=Segment.Kind.STATIC)
    columns, expressions = [], []
    for field in Customer._meta.concrete_fields:
        if field.primary_key or field.null:
            continue
        columns.append(field.column)
        if field.name == "external_id":
            expressions.append("'b-' || g")
        elif field.get_internal_type() == "JSONField":
            expressions.append("'[]'::jsonb" if field.default is list else "'{}'::jsonb")
        elif field.get_internal_type() == "BooleanField":
            expressions.append("false")
        elif field.get_internal_type() == "DateTimeField":
            expressions.append("now()")
        else:
            expressions.append("''")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Customer._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(expressions)} FROM generate_series(1, %s) AS g",
            [count],
        )
        cursor.execute(
            f"INSERT INTO {SegmentMember._meta.db_table} (segment_id, customer_id, added_at) "
            f"SELECT %s, id, now() FROM {Customer._meta.db_table}",
            [segment.pk],
        )
        cursor.execute(f"ANALYZE {Customer._meta.db_table}")
        cursor.execute(f"ANALYZE {SegmentMember._meta.db_table}")
    return segment


def make_benefit() -> Benefit:
    template = StrategyTemplate.objects.create(code="bench", name="bench")
    activity = Activity.objects.create(
        code="bench", name="bench", template=template, timezone="Asia/Shanghai"
    )
    benefit = Benefit.objects.create(
        activity=activity,
        code="gift",
        kind="coupon",
        value="10.00",
        valid_days=30,
        per_customer_limit=LIMIT,
    )
    approvals.record_approval(activity=activity, bypass="benchmark")
    return benefit


def rss_mib() -> float:
    """This process's resident memory now (what a worker running the issue holds)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def issue(benefit: Benefit, segment: Segment) -> tuple[float, float, float]:
    """Issue to the segment; returns (seconds, RSS before in MiB, highest RSS after a page)."""
    job = coupon_issue.request_issue(benefit=benefit, segment=segment)
    coupon_issue.approve_issue(issue=job, bypass="benchmark", start=False)
    before = peak = rss_mib()
    started = time.perf_counter()
    while (page := coupon_issue.issue_next_page(issue_id=job.pk)) is not None:
        peak = max(peak, rss_mib())
        if page.done:
            break
    elapsed = time.perf_counter() - started
    assert Grant.objects.filter(benefit=benefit).count() == CUSTOMERS
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(DISTINCT code), count(code) FROM {Grant._meta.db_table}")
        distinct, total = cursor.fetchone()
    assert distinct == total == CUSTOMERS
    return elapsed, before, peak


def copy_same_rows(benefit: Benefit, count: int) -> float:
    """COPY `count` grant-shaped rows (codes drawn beforehand) into a table with the grants
    table's columns, defaults, indexes (unique code and key included) and foreign keys."""
    table = Grant._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(
            f"CREATE TABLE bench_copy (LIKE {table} INCLUDING DEFAULTS INCLUDING INDEXES)"
        )
        # The same foreign keys too: the grants table checks benefit, activity and customer.
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        for (definition,) in cursor.fetchall():
            cursor.execute(f"ALTER TABLE bench_copy ADD {definition}")
    now = timezone.now()
    until = (now + dt.timedelta(days=30)).isoformat()
    stamp = now.isoformat()
    buffer = io.StringIO()
    alphabet = coupon_codes.ALPHABET
    for i in range(1, count + 1):
        code = "".join(secrets.choice(alphabet) for _ in range(12))
        buffer.write(
            f"{i}\t{benefit.pk}\t{benefit.activity_id}\t{i}\tcopy:{i}\t1\t1\t10.00\tissued\t"
            f"{code}\t\\N\t{until}\t\t{stamp}\t{stamp}\n"
        )
    data = buffer.getvalue().encode()
    columns = (
        "id, benefit_id, activity_id, customer_id, idempotency_key, quantity, remaining, value, "
        'state, code, valid_from, valid_until, "order", created_at, updated_at'
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY bench_copy ({columns}) FROM STDIN") as copy:
            for offset in range(0, len(data), 1 << 20):
                copy.write(data[offset : offset + (1 << 20)])
        cursor.execute("SELECT count(*) FROM bench_copy")
        assert cursor.fetchone()[0] == count
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy")
    return elapsed


def redeem_latency(benefit: Benefit, count: int) -> tuple[float, float]:
    grants = list(
        Grant.objects.filter(benefit=benefit)
        .order_by("?")
        .values_list("code", "customer__external_id")[:count]
    )
    timings = []
    for index, (code, customer) in enumerate(grants):
        started = time.perf_counter()
        answer = redemptions.redeem_coupon(
            code=code,
            customer=customer,
            order=f"o-{index}",
            client_id=None,
            idempotency_key=f"bench:{index}",
        )
        timings.append(time.perf_counter() - started)
        assert answer.status == 200
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


def bare_lock_latency(benefit: Benefit, count: int) -> tuple[float, float]:
    """The floor under a redemption: one transaction that locks a grant by its code and
    updates it, nothing else (no answer row, no log, no checks)."""
    codes = list(
        Grant.objects.filter(benefit=benefit, state="issued").values_list("code", flat=True)[:count]
    )
    table = Grant._meta.db_table
    timings = []
    for code in codes:
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {table} WHERE code = %s FOR UPDATE", [code])
            cursor.execute(
                f"UPDATE {table} SET remaining = 1 WHERE id = %s", [cursor.fetchone()[0]]
            )
        timings.append(time.perf_counter() - started)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


def expire(benefit: Benefit) -> tuple[float, int, float]:
    """Expire every still-issued coupon; returns (seconds, expired, longest batch seconds)."""
    now = timezone.now()
    Grant.objects.filter(benefit=benefit).update(valid_until=now - dt.timedelta(minutes=1))
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {Grant._meta.db_table}")
    longest = total = 0.0
    expired = 0
    while True:
        started = time.perf_counter()
        done = coupon_expiry.expire_batch(now=now)
        elapsed = time.perf_counter() - started
        longest = max(longest, elapsed)
        total += elapsed
        expired += done
        if done < coupon_expiry.EXPIRY_BATCH:
            return total, expired, longest


def main() -> None:
    reset_database()
    segment = make_audience(CUSTOMERS)
    benefit = make_benefit()
    issue_seconds, rss_before, rss_peak = issue(benefit, segment)
    copy_seconds = copy_same_rows(benefit, CUSTOMERS)
    issue_rate, copy_rate = CUSTOMERS / issue_seconds, CUSTOMERS / copy_seconds
    print(f"customers: {CUSTOMERS:,}; per-customer limit: {LIMIT}")
    print(
        f"issue to a segment: {issue_seconds:.2f} s, {issue_rate:,.0f} grants/s; "
        f"plain COPY of the same rows: {copy_seconds:.2f} s, {copy_rate:,.0f} rows/s; "
        f"ratio {issue_rate / copy_rate:.2f}x (target >= 0.3x)"
    )
    print(
        f"issuing process RSS: {rss_before:.0f} MiB before, at most {rss_peak:.0f} MiB "
        f"after any page; {CUSTOMERS:,} distinct codes"
    )
    bare50, bare99 = bare_lock_latency(benefit, REDEMPTIONS)
    p50, p99 = redeem_latency(benefit, REDEMPTIONS)
    print(
        f"redeem ({REDEMPTIONS:,} distinct codes, sequential): "
        f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms; a bare lock-and-update "
        f"transaction: p50 {bare50 * 1000:.2f} ms, p99 {bare99 * 1000:.2f} ms "
        f"(ratio p99 {p99 / bare99:.1f}x)"
    )
    seconds, expired, longest = expire(benefit)
    print(
        f"expiry: {expired:,} coupons in {seconds:.2f} s ({expired / seconds:,.0f}/s), "
        f"batches of {coupon_expiry.EXPIRY_BATCH:,}, longest batch {longest * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()

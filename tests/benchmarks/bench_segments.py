"""Benchmark: a dynamic segment on N generated customers, against the comma-string LIKE approach.

    .venv/bin/python tests/benchmarks/bench_segments.py --customers 1000000

Segment: tag "vip" AND at least 2 paid orders in the last 2 (local) days. Measured, on the same
data in the same run:
- Gambit: `segment_customers(...).count()` and walking every member id with
  `segment_customer_id_pages` (keyset pages of 5,000; Python memory peak reported);
- the string trick Gambit replaces: tag ids kept as ",3,7,12," and matched with LIKE '%,7,%',
  with the same order condition as a correlated subquery, counted and paged the same way.

Both must find the same customers (checked). Uses its own database (default
gambit_bench_segments, created if missing), generated once with `generate_customers` and reused
while --customers stays the same.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SEGMENT_CODE = "bench-vip-recent-buyers"
RULE = {
    "all": [
        {"field": "customer.tags", "op": "contains", "value": "vip"},
        {"field": "customer.orders.paid_last_2d", "op": "gte", "value": 2},
    ]
}
PAGE_SIZE = 5000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="Timed runs per measure (p50).")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gambit_bench_segments"
        ),
    )
    parser.add_argument("--regenerate", action="store_true", help="Drop and regenerate the data.")
    return parser.parse_args()


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def prepare(count: int, regenerate: bool):
    from django.core.management import call_command
    from django.db import connection

    from segments.models import Customer, Segment

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_meta (customers integer, generated_at timestamptz)"
        )
        cursor.execute("SELECT customers, generated_at FROM bench_meta")
        meta = cursor.fetchone()
    if regenerate or meta is None or meta[0] != count or Customer.objects.count() != count:
        print(f"Generating {count:,} customers (once; reused by later runs)...", flush=True)
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE segments_customer, segments_order, segments_customertag, "
                "segments_segmentmember, segments_segmentsnapshot, bench_meta CASCADE"
            )
            cursor.execute("DROP TABLE IF EXISTS bench_tag_strings")
        started = time.perf_counter()
        call_command("generate_customers", str(count), "--batch", "20000")
        print(f"generated in {time.perf_counter() - started:.0f}s", flush=True)
        build_tag_strings()
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_meta VALUES (%s, now())", [count])
            cursor.execute("VACUUM ANALYZE")  # fresh statistics for the planner
            cursor.execute("SELECT generated_at FROM bench_meta")
            meta = (count, cursor.fetchone()[0])
    segment, _ = Segment.objects.update_or_create(
        code=SEGMENT_CODE,
        defaults={"name": "VIPs with 2+ paid orders in 2 days", "kind": "dynamic", "rule": RULE},
    )
    return segment, meta[1]


def build_tag_strings() -> None:
    """The legacy layout: each customer's tag ids as one ",3,7,12," string."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_tag_strings AS SELECT c.id AS customer_id, "
            "COALESCE(',' || string_agg(ct.tag_id::text, ',' ORDER BY ct.tag_id) || ',', '')"
            " AS tag_ids "
            "FROM segments_customer c LEFT JOIN segments_customertag ct ON ct.customer_id = c.id "
            "GROUP BY c.id"
        )
        cursor.execute("ALTER TABLE bench_tag_strings ADD PRIMARY KEY (customer_id)")


def like_sql(vip_id: int) -> str:
    """The same segment with LIKE on the tag string; the order condition is the same
    local-day window, evaluated per customer."""
    from django.conf import settings

    tz = f"COALESCE(NULLIF(c.timezone, ''), '{settings.GAMBIT_DEFAULT_TIMEZONE}')"
    sql = (
        "FROM bench_tag_strings s JOIN segments_customer c ON c.id = s.customer_id "
        f"WHERE s.tag_ids LIKE '%%,{vip_id},%%' AND ("
        "  SELECT count(*) FROM segments_order o WHERE o.customer_id = s.customer_id"
        "  AND o.state IN ('paid', 'shipped', 'completed')"
        f"  AND o.paid_at >= (date_trunc('day', %s::timestamptz AT TIME ZONE {tz})"
        f"      - interval '1 days') AT TIME ZONE {tz}"
        ") >= 2"
    )
    return sql


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def timed(fn, runs: int) -> tuple[float, object]:
    fn()  # warm the cache: every figure is a warm-cache figure
    samples, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return p50(samples), result


def main() -> None:
    args = parse_args()
    if args.customers < 1:
        sys.exit("--customers must be at least 1")
    ensure_database(args.database_url)
    setup_django(args.database_url)

    from django.db import connection

    from segments.models import Tag
    from segments.selectors import segment_customer_id_pages, segment_customers

    segment, now = prepare(args.customers, args.regenerate)
    vip_id = Tag.objects.get(code="vip").pk
    like_from = like_sql(vip_id)

    def ours_count() -> int:
        return segment_customers(segment_id=segment.pk, now=now).count()

    def ours_pages() -> tuple[int, int]:
        tracemalloc.start()
        total = 0
        for page in segment_customer_id_pages(segment_id=segment.pk, page_size=PAGE_SIZE, now=now):
            total += len(page)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return total, peak

    def like_count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) {like_from}", [now])
            return cursor.fetchone()[0]

    def like_pages() -> int:
        total, last = 0, 0
        with connection.cursor() as cursor:
            while True:
                cursor.execute(
                    f"SELECT s.customer_id {like_from} AND s.customer_id > %s "
                    "ORDER BY s.customer_id LIMIT %s",
                    [now, last, PAGE_SIZE],
                )
                ids = [row[0] for row in cursor.fetchall()]
                total += len(ids)
                if len(ids) < PAGE_SIZE:
                    return total
                last = ids[-1]

    ours_ids = {
        pk for page in segment_customer_id_pages(segment_id=segment.pk, now=now) for pk in page
    }
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.customer_id {like_from}", [now])
        like_ids = {row[0] for row in cursor.fetchall()}
    assert ours_ids == like_ids, f"different members: {len(ours_ids)} vs {len(like_ids)}"

    count_ours, members = timed(ours_count, args.runs)
    count_like, like_members = timed(like_count, args.runs)
    pages_ours, (paged, peak) = timed(ours_pages, args.runs)
    pages_like, _ = timed(like_pages, args.runs)
    assert members == like_members == paged == len(ours_ids)

    print()
    print(f"customers: {args.customers:,}   members: {members:,}   runs: {args.runs} (p50, warm)")
    print(f"{'':28}{'Gambit':>12}{'LIKE string':>14}{'ratio':>9}")
    print(
        f"{'count':28}{count_ours * 1000:>10.1f}ms{count_like * 1000:>12.1f}ms"
        f"{count_like / count_ours:>8.1f}x"
    )
    print(
        f"{'page all ids (5,000/page)':28}{pages_ours * 1000:>10.1f}ms{pages_like * 1000:>12.1f}ms"
        f"{pages_like / pages_ours:>8.1f}x"
    )
    print(f"python memory peak while paging all ids: {peak / 1024:.0f} KiB")


if __name__ == "__main__":
    main()

"""Benchmark: "top 10 and my rank" on a leaderboard of N participants, against the naive rank
(`COUNT(*) WHERE score > mine`, plus the ties reached earlier) in the same run.

    GAMBIT_BENCH_LEADERBOARD_N=1000000 .venv/bin/python tests/benchmarks/bench_leaderboard.py

Two boards on the same N customers, generated once with generate_series (reused while N stays
the same; --regenerate forces it):
- `points`: scores 0..100,000 (a game's points; about 100,000 distinct scores at 1M);
- `distinct`: scores 0..10^9, nearly every score distinct (the case a table of one count per
  score could not help: it would hold as many rows as customers).

Each measure asks, for random customers, the top 10 (`leaderboard_top`) and the customer's
rank: `rank_of` (the count tree's blocks above plus the earlier ties) or the naive
`naive_rank_of`; both ranks must agree. p50 and p99 over --samples customers, warm cache.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

BOARDS = {"points": 100_000, "distinct": 1_000_000_000}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--participants",
        type=int,
        default=int(os.environ.get("GAMBIT_BENCH_LEADERBOARD_N", "1000000")),
    )
    parser.add_argument("--samples", type=int, default=200, help="Customers asked (p50, p99).")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gambit_bench_leaderboard"
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
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.benchmarks.settings"
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _customer_insert(count: int) -> tuple[str, list[Any]]:
    """INSERT ... SELECT FROM generate_series for `count` bare customers, every NOT NULL column
    given its model default (names and defaults from _meta)."""
    from django.db.models import NOT_PROVIDED
    from psycopg import sql
    from psycopg.types.json import Jsonb

    from segments.models import Customer

    columns, values, params = [], [], []
    for field in Customer._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(sql.Identifier(field.column))
        if field.name == "external_id":
            values.append(sql.SQL("'lb-' || g"))
        elif field.name in ("created_at", "updated_at"):
            values.append(sql.SQL("now()"))
        elif field.default is not NOT_PROVIDED:
            default = field.get_default()
            values.append(sql.SQL("%s"))
            params.append(Jsonb(default) if isinstance(default, dict | list) else default)
        elif field.null:
            values.append(sql.SQL("NULL"))
        else:
            values.append(sql.SQL("''"))
    statement = sql.SQL("INSERT INTO {t} ({columns}) SELECT {values} FROM generate_series(1, %s) g")
    params.append(count)
    return (
        statement.format(
            t=sql.Identifier(Customer._meta.db_table),
            columns=sql.SQL(", ").join(columns),
            values=sql.SQL(", ").join(values),
        ).as_string(None),
        params,
    )


def prepare(count: int, regenerate: bool) -> dict[str, int]:
    from django.core.management import call_command
    from django.db import connection
    from psycopg import sql

    from activities.models import Activity, Score, ScoreBucket, StrategyTemplate
    from activities.models.leaderboard import FANOUT_BITS, LEVELS
    from segments.models import Customer

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_leaderboard_meta (participants integer)")
        cursor.execute("SELECT participants FROM bench_leaderboard_meta")
        meta = cursor.fetchone()
    template, _ = StrategyTemplate.objects.get_or_create(
        code="bench-leaderboard", defaults={"name": "Leaderboard benchmark"}
    )
    boards = {
        code: Activity.objects.get_or_create(
            code=f"bench-{code}", defaults={"name": code, "template": template}
        )[0].pk
        for code in BOARDS
    }
    if not regenerate and meta is not None and meta[0] == count:
        return boards
    print(f"Generating {count:,} participants on two boards (once)...", flush=True)
    started = time.perf_counter()
    score, bucket = Score._meta, ScoreBucket._meta
    names = {f.name: sql.Identifier(f.column) for f in score.concrete_fields}
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("TRUNCATE {}, {}, {} CASCADE")
            .format(
                sql.Identifier(score.db_table),
                sql.Identifier(bucket.db_table),
                sql.Identifier("bench_leaderboard_meta"),
            )
            .as_string(None)
        )
        # The benchmark's own database: every customer in it is generated here.
        cursor.execute(
            sql.SQL("TRUNCATE {} CASCADE")
            .format(sql.Identifier(Customer._meta.db_table))
            .as_string(None)
        )
        statement, params = _customer_insert(count)
        cursor.execute(statement, params)
        for code, spread in BOARDS.items():
            # Reached within the last 30 days; ties on a score are common on `points`.
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {t} ({activity}, {customer}, {score}, {reached_at}, {events}) "
                    "SELECT %s, c.id, floor(random() * %s)::bigint, "
                    "now() - random() * interval '30 days', 1 FROM {customers} c "
                    "WHERE c.external_id LIKE 'lb-%%'"
                )
                .format(
                    t=sql.Identifier(score.db_table),
                    customers=sql.Identifier(Customer._meta.db_table),
                    **names,
                )
                .as_string(None),
                [boards[code], spread + 1],
            )
        for level in range(LEVELS):
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {b} ({b_activity}, {b_level}, {b_block}, {holders}) "
                    "SELECT {activity}, %s, {score} >> {shift}, count(*) FROM {t} "
                    "GROUP BY {activity}, {score} >> {shift}"
                )
                .format(
                    b=sql.Identifier(bucket.db_table),
                    b_activity=sql.Identifier(bucket.get_field("activity").column),
                    b_level=sql.Identifier(bucket.get_field("level").column),
                    b_block=sql.Identifier(bucket.get_field("block").column),
                    holders=sql.Identifier(bucket.get_field("holders").column),
                    t=sql.Identifier(score.db_table),
                    shift=sql.Literal(FANOUT_BITS * level),
                    **names,
                )
                .as_string(None),
                [level],
            )
        cursor.execute("INSERT INTO bench_leaderboard_meta VALUES (%s)", [count])
        cursor.execute("VACUUM ANALYZE")  # fresh statistics and visibility map
    print(f"generated in {time.perf_counter() - started:.0f}s", flush=True)
    return boards


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(activity_id: int, customer_ids: list[int], rank) -> tuple[list[float], list[int]]:
    from activities.selectors_subjects import leaderboard_top

    timings, ranks = [], []
    rank(activity_id=activity_id, customer_id=customer_ids[0])  # warm
    for customer_id in customer_ids:
        started = time.perf_counter()
        top = leaderboard_top(activity_id=activity_id, limit=10)
        mine = rank(activity_id=activity_id, customer_id=customer_id)
        timings.append(time.perf_counter() - started)
        assert len(top) == 10 and mine is not None
        ranks.append(mine[0])
    return timings, ranks


def main() -> None:
    args = parse_args()
    if args.participants < 10:
        sys.exit("--participants must be at least 10")
    ensure_database(args.database_url)
    setup_django(args.database_url)

    from django.db import connection

    from activities.models import ScoreBucket
    from activities.selectors_subjects import naive_rank_of, rank_of

    boards = prepare(args.participants, args.regenerate)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(id), max(id) FROM segments_customer WHERE external_id LIKE 'lb-%'"
        )
        low, high = cursor.fetchone()
    rng = random.Random(15)
    print()
    print(
        f"participants: {args.participants:,}   samples: {args.samples} customers per measure "
        "(top 10 + that customer's rank, warm)"
    )
    print(
        f"{'board':10}{'':>10}{'p50':>10}{'p99':>10}{'naive p50':>12}{'naive p99':>12}"
        f"{'ratio p50':>11}"
    )
    for code, activity_id in boards.items():
        customers = [rng.randint(low, high) for _ in range(args.samples)]
        ours, our_ranks = measure(activity_id, customers, rank_of)
        naive, naive_ranks = measure(activity_id, customers, naive_rank_of)
        assert our_ranks == naive_ranks, "the two ranks disagree"
        buckets = ScoreBucket.objects.filter(
            activity_id=activity_id, level=0, holders__gt=0
        ).count()
        print(
            f"{code:10}{buckets:>9,}b"
            f"{percentile(ours, 0.5) * 1000:>8.2f}ms{percentile(ours, 0.99) * 1000:>8.2f}ms"
            f"{percentile(naive, 0.5) * 1000:>10.2f}ms{percentile(naive, 0.99) * 1000:>10.2f}ms"
            f"{percentile(naive, 0.5) / percentile(ours, 0.5):>10.1f}x"
        )
    print("b = distinct scores; ratio = naive p50 / Gambit p50")


if __name__ == "__main__":
    main()

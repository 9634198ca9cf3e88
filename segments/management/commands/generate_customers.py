"""`manage.py generate_customers N`: N realistic customers with tags and orders, for demos and
benchmarks. Batches stream through PostgreSQL COPY, so memory stays flat at any N."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from segments.models import PROFILE_FIELDS, Customer, CustomerTag, Order, Tag

SURNAMES = [
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Lin",
    "Luo",
    "Gao",
]
GIVEN = [
    "Wei",
    "Fang",
    "Na",
    "Min",
    "Jing",
    "Li",
    "Qiang",
    "Lei",
    "Jun",
    "Yang",
    "Yong",
    "Yan",
    "Jie",
    "Tao",
    "Ming",
    "Chao",
    "Xiu",
    "Hui",
    "Ling",
    "Emma",
    "Leo",
]
CITIES = ["shanghai", "beijing", "shenzhen", "guangzhou", "hangzhou", "chengdu", "wuhan", "xian"]
ZONES = [
    ("Asia/Shanghai", 85),
    ("Asia/Hong_Kong", 4),
    ("Asia/Singapore", 3),
    ("Europe/London", 2),
    ("America/New_York", 2),
    ("America/Los_Angeles", 2),
    ("Australia/Sydney", 2),
]
LEVELS = [("bronze", 50), ("silver", 30), ("gold", 15), ("platinum", 5)]
# (code, name, share of customers carrying it)
TAGS = [
    ("new-user", "New user", 0.20),
    ("vip", "VIP", 0.08),
    ("churn-risk", "Churn risk", 0.10),
    ("coupon-lover", "Coupon lover", 0.15),
    ("mini-program", "Came from the mini program", 0.35),
    ("app", "Uses the app", 0.30),
    ("newsletter", "Newsletter reader", 0.25),
    ("1", "Campaign 1", 0.05),
    ("11", "Campaign 11", 0.05),
    ("big-spender", "Big spender", 0.03),
]
CUSTOMER_COLUMNS = [*PROFILE_FIELDS, "attributes", "quality_flags", "created_at", "updated_at"]
ORDER_COLUMNS = [
    "external_id",
    "customer_id",
    "amount",
    "currency",
    "state",
    "placed_at",
    "paid_at",
    "shipped_at",
    "completed_at",
    "cancelled_at",
    "refunded_at",
    "attributes",
    "created_at",
    "updated_at",
]


class Command(BaseCommand):
    help = "Fill the database with N realistic customers, tags and orders (PostgreSQL COPY)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int, help="How many customers to add.")
        parser.add_argument("--prefix", default="gen-", help="External id prefix (default gen-).")
        parser.add_argument("--batch", type=int, default=10_000, help="Customers per batch.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (repeatable data).")
        parser.add_argument(
            "--recent-buyers",
            type=float,
            default=0.03,
            help="Share of customers with a burst of paid orders in the last two days.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("generate_customers streams with COPY and needs PostgreSQL.")
        count, prefix, batch = options["count"], options["prefix"], options["batch"]
        if count < 1 or batch < 1:
            raise CommandError("count and --batch must be at least 1.")
        if Customer.objects.filter(external_id__startswith=prefix).exists():
            raise CommandError(
                f"Customers with the prefix {prefix!r} exist already; pass another --prefix."
            )
        generator = Generator(
            seed=options["seed"], now=timezone.now(), recent_buyers=options["recent_buyers"]
        )
        tag_ids = generator.ensure_tags()
        progress = Progress(count, stream=self.stderr)
        totals = {"orders": 0, "tags": 0}
        for start in range(0, count, batch):
            size = min(batch, count - start)
            with transaction.atomic():
                orders, links = generator.write_batch(prefix, start, size, tag_ids)
            totals["orders"] += orders
            totals["tags"] += links
            progress.update(start + size)
        progress.finish()
        self.stdout.write(
            self.style.SUCCESS(
                f"Added {count} customers, {totals['orders']} orders, {totals['tags']} tag links."
            )
        )


class Progress:
    """A one-line progress bar on a terminal, one line per batch otherwise (`stream` is the
    command's OutputWrapper)."""

    WIDTH = 30

    def __init__(self, total: int, *, stream: Any) -> None:
        self.total = total
        self.stream = stream
        self.started = time.monotonic()
        self.tty = stream.isatty()

    def update(self, done: int) -> None:
        filled = int(self.WIDTH * done / self.total)
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed else 0.0
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total} "
            f"{100 * done / self.total:5.1f}% {elapsed:6.1f}s {rate:,.0f}/s"
        )
        self.stream.write(f"\r{line}" if self.tty else line, ending="" if self.tty else "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("")


class Generator:
    def __init__(self, *, seed: int, now: dt.datetime, recent_buyers: float) -> None:
        self.random = random.Random(seed)
        self.now = now
        self.recent_buyers = recent_buyers
        self.zones = [zone for zone, _ in ZONES]
        self.zone_weights = [weight for _, weight in ZONES]
        self.levels = [level for level, _ in LEVELS]
        self.level_weights = [weight for _, weight in LEVELS]

    def ensure_tags(self) -> list[tuple[int, float]]:
        Tag.objects.bulk_create(
            [Tag(code=code, name=name) for code, name, _ in TAGS], ignore_conflicts=True
        )
        ids = dict(Tag.objects.filter(code__in=[c for c, _, _ in TAGS]).values_list("code", "pk"))
        return [(ids[code], share) for code, _, share in TAGS]

    def write_batch(
        self, prefix: str, start: int, size: int, tag_ids: list[tuple[int, float]]
    ) -> tuple[int, int]:
        external_ids = [f"{prefix}{start + offset}" for offset in range(size)]
        _copy(Customer, CUSTOMER_COLUMNS, (self.customer_row(e) for e in external_ids))
        ids = dict(
            Customer.objects.filter(external_id__in=external_ids).values_list("external_id", "pk")
        )
        links = [
            (ids[e], tag_id)
            for e in external_ids
            for tag_id, share in tag_ids
            if self.random.random() < share
        ]
        _copy(CustomerTag, ["customer_id", "tag_id"], iter(links))
        orders = [row for e in external_ids for row in self.order_rows(e, ids[e])]
        _copy(Order, ORDER_COLUMNS, iter(orders))
        return len(orders), len(links)

    def customer_row(self, external_id: str) -> tuple[Any, ...]:
        r = self.random
        name = f"{r.choice(SURNAMES)} {r.choice(GIVEN)}"
        flags: list[dict[str, Any]] = []
        birthday: dt.date | None = dt.date(1960, 1, 1) + dt.timedelta(days=r.randrange(16_000))
        if r.random() < 0.01:  # what a real storefront sends now and then
            flags.append({"field": "birthday", "code": "invalid_date", "value": "unknown"})
            birthday = None
        created = self.now - dt.timedelta(days=r.randrange(1, 1500), seconds=r.randrange(86_400))
        has_email = r.random() < 0.6
        return (
            external_id,
            name,
            f"{external_id}@example.com" if has_email else "",
            f"+86138{r.randrange(10**8):08d}" if r.random() < 0.8 else "",
            birthday,
            r.choices(self.zones, self.zone_weights)[0],
            "zh-CN" if r.random() < 0.9 else "en-US",
            r.choices(self.levels, self.level_weights)[0],
            f"o{r.getrandbits(100):x}"[:28] if r.random() < 0.7 else "",
            has_email and r.random() < 0.5,
            r.random() < 0.4,
            r.random() < 0.6,
            None,
            json.dumps({"city": r.choice(CITIES), "points": r.randrange(0, 5000)}),
            json.dumps(flags),
            created,
            created,
        )

    def order_rows(self, external_id: str, customer_id: int) -> Iterator[tuple[Any, ...]]:
        r = self.random
        history = min(int(r.expovariate(1 / 2.5)), 30)
        recent = r.randint(2, 4) if r.random() < self.recent_buyers else 0
        for index in range(history + recent):
            if index < history:
                placed = self.now - dt.timedelta(days=r.uniform(2, 365))
            else:
                placed = self.now - dt.timedelta(hours=r.uniform(0.1, 40))
            yield self.order_row(f"{external_id}-{index}", customer_id, placed)

    def order_row(self, external_id: str, customer_id: int, placed: dt.datetime) -> tuple[Any, ...]:
        r = self.random
        age = self.now - placed
        roll = r.random()
        times: dict[str, dt.datetime | None] = dict.fromkeys(
            ("paid", "shipped", "completed", "cancelled", "refunded")
        )
        if roll < 0.05:
            state = "pending" if age < dt.timedelta(days=1) else "cancelled"
            if state == "cancelled":
                times["cancelled"] = placed + dt.timedelta(hours=1)
        else:
            times["paid"] = placed + dt.timedelta(minutes=r.randint(1, 30))
            if roll < 0.08:
                state = "refunded"
                times["refunded"] = times["paid"] + dt.timedelta(hours=3)
            elif age < dt.timedelta(days=2):
                state = "paid"
            elif age < dt.timedelta(days=7):
                state = "shipped"
                times["shipped"] = times["paid"] + dt.timedelta(days=1)
            else:
                state = "completed"
                times["shipped"] = times["paid"] + dt.timedelta(days=1)
                times["completed"] = times["paid"] + dt.timedelta(days=4)
        return (
            external_id,
            customer_id,
            Decimal(r.randrange(990, 99_900)) / 100,
            "CNY",
            state,
            placed,
            times["paid"],
            times["shipped"],
            times["completed"],
            times["cancelled"],
            times["refunded"],
            "{}",
            self.now,
            self.now,
        )


def _copy(model: Any, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
    table = model._meta.db_table
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)

"""Running the notification statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction


@contextmanager
def cursor() -> Iterator[Any]:
    """A cursor in a transaction with JIT compilation, bitmap and sequential scans off.

    These statements touch a page of customers or a few hundred deliveries by key. Their
    estimates (a correlated probe per row, an unnested array) look expensive enough to
    PostgreSQL to JIT-compile them, which then costs more than running them: on a 5,000-row
    planning page, 490 ms of JIT for 85 ms of work. And while a big broadcast churns its
    deliveries faster than autovacuum re-analyses them, the statistics are stale enough for the
    planner to combine whole partial indexes in a bitmap (1.5 million entries read to update
    100 rows); without bitmaps it keeps to exact index lookups. The same staleness the other
    way round (deliveries analysed while empty, then a million planned before autovacuum looks
    again) makes a sequential scan per probe look free: planning turned quadratic. Every
    statement here is designed as index lookups, so sequential scans are ruled out.
    """
    with transaction.atomic(), connection.cursor() as opened:
        opened.execute(
            "SET LOCAL jit = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off"
        )
        yield opened

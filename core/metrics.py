"""The counters the services move, each when its transaction commits (a rolled-back grant was
never issued). The services call these where they accept or emit an event, finish a run or
issue a grant; `observability.metrics` serves them on `/metrics` with the figures it reads at
scrape time.

With PROMETHEUS_MULTIPROC_DIR set before this module is imported, each process writes its
counts to files there, which the scrape sums (README, "Operations").
"""

from __future__ import annotations

from django.db import transaction
from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "gambit_events",
    "Events recorded: storefront (API), system (order transitions) or emitted (by a chain).",
    ["source", "channel"],
)
RUNS = Counter("gambit_runs", "Chain runs finished, by outcome.", ["outcome"])
RUN_SECONDS = Histogram(
    "gambit_run_duration_seconds",
    "Time of one chain run, from the run's lock to its commit.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRANTS = Counter("gambit_grants", "Grants issued, by benefit kind.", ["kind"])
GRANT_UNITS = Counter("gambit_grant_units", "Units granted, by benefit kind.", ["kind"])


def record_event(*, source: str, channel: str) -> None:
    """An event was recorded; `source` is storefront, system or emitted."""

    def count() -> None:
        EVENTS.labels(source=source, channel=channel).inc()

    transaction.on_commit(count)


def record_run(*, outcome: str, seconds: float) -> None:
    def count() -> None:
        RUNS.labels(outcome=outcome).inc()
        RUN_SECONDS.observe(seconds)

    transaction.on_commit(count)


def record_grant(*, kind: str, quantity: int) -> None:
    def count() -> None:
        GRANTS.labels(kind=kind).inc()
        GRANT_UNITS.labels(kind=kind).inc(quantity)

    transaction.on_commit(count)

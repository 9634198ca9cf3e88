"""Prometheus metrics: `/metrics` on the web, optionally one exporter per Celery host.

Two kinds of figures:
- Counters each process increments when something commits: events recorded, chain runs by
  outcome (and their duration), grants issued. They live in the kernel (`core.metrics`), and
  the services that record, run and grant call them.
- Gauges and totals read at scrape time from where the truth is: queue depth and unacked
  tasks from the broker, unfinished events and open deliveries from PostgreSQL's partial
  indexes, broadcast sends from the broadcasts' own counters. Every host reports the same
  values for these; they need no aggregation.

Multiprocess mode (gunicorn workers, Celery prefork children): set PROMETHEUS_MULTIPROC_DIR
to an empty directory shared by every process of the host (wipe it at deploy/start). Each
process then writes its counters to mmap files there and `/metrics` sums them, so one scrape
of the web covers the Celery workers of the same host too. A worker host without a web
process sets GAMBIT_WORKER_METRICS_PORT: its main worker process serves the same sum on that
port. Only counters and histograms live in those files (no live gauges), so a dead process's
file keeps its counts and needs no mark_process_dead hook. See README "Operations".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import structlog
from celery import signals as celery_signals
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = structlog.get_logger(__name__)

QUEUES = ("events", "fanout", "sends", "default")
# kombu's Redis transport keeps priorities 3, 6 and 9 of a queue in sibling lists.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class StateCollector(Collector):
    """What is true now, read at scrape time; a source that does not answer is left out."""

    def collect(self) -> Iterator[Metric]:
        for read in (self._queues, self._events, self._deliveries, self._broadcast_sends):
            try:
                yield from read()
            except Exception:  # a down broker or database must not break the scrape
                logger.warning("metrics_source_unavailable", source=read.__name__, exc_info=True)

    def _queues(self) -> Iterator[Metric]:
        import redis

        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            pipe = client.pipeline(transaction=False)
            for queue in QUEUES:
                for suffix in PRIORITY_SUFFIXES:
                    pipe.llen(queue + suffix)
            pipe.hlen("unacked")
            values = pipe.execute()
        finally:
            client.close()
        depth = GaugeMetricFamily(
            "gambit_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        per_queue = len(PRIORITY_SUFFIXES)
        for index, queue in enumerate(QUEUES):
            depth.add_metric([queue], sum(values[index * per_queue : (index + 1) * per_queue]))
        yield depth
        yield GaugeMetricFamily(
            "gambit_queue_unacked",
            "Tasks a worker has taken but not acknowledged (redelivered if it dies).",
            value=values[-1],
        )

    def _events(self) -> Iterator[Metric]:
        from activities.models import Event, EventState

        unfinished = Event.objects.filter(state__in=[EventState.PENDING, EventState.RUNNING])
        yield GaugeMetricFamily(
            "gambit_events_unfinished",
            "Events accepted but not yet done (the outbox the sweeper re-dispatches).",
            value=unfinished.count(),
        )

    def _deliveries(self) -> Iterator[Metric]:
        from django.db.models import Count

        from notifications.models import Delivery

        rows = (
            Delivery.objects.filter(status__in=["queued", "sending"], broadcast__isnull=False)
            .values("status")
            .annotate(n=Count("*"))
            .order_by()
        )
        open_ = GaugeMetricFamily(
            "gambit_deliveries_open",
            "Broadcast deliveries planned but not finished, by status.",
            labels=["status"],
        )
        counts = {row["status"]: row["n"] for row in rows}
        for status in ("queued", "sending"):
            open_.add_metric([status], counts.get(status, 0))
        yield open_

    def _broadcast_sends(self) -> Iterator[Metric]:
        from django.db.models import Sum

        from notifications.models import Broadcast

        rows = (
            Broadcast.objects.values("template__channel")
            .annotate(sent=Sum("sent"), failed=Sum("failed"), skipped=Sum("skipped"))
            .order_by()
        )
        sends = CounterMetricFamily(
            "gambit_broadcast_deliveries",
            "Broadcast deliveries finished, by channel and status (the broadcasts' counters).",
            labels=["channel", "status"],
        )
        for row in rows:
            for status in ("sent", "failed", "skipped"):
                sends.add_metric([row["template__channel"], status], row[status] or 0)
        yield sends


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """The text a scrape gets: this host's counters plus the state read now."""
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    if multiprocess_dir():
        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters)
    else:
        counters = REGISTRY
    return generate_latest(counters) + generate_latest(state)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`. With GAMBIT_METRICS_TOKEN set, scrapers send `Authorization: Bearer`."""
    token = settings.GAMBIT_METRICS_TOKEN
    if token and not constant_time_compare(
        request.headers.get("Authorization", ""), f"Bearer {token}"
    ):
        return HttpResponse("metrics token required\n", status=401, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def _serve_worker_metrics(**kwargs: Any) -> None:
    """On a worker host: the main worker process serves its children's counters."""
    port = os.environ.get("GAMBIT_WORKER_METRICS_PORT")
    if not port:
        return
    if not multiprocess_dir():
        # Without the shared directory the children's counters never reach this process.
        logger.warning("worker_metrics_need_multiproc_dir", port=port)
        return
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(StateCollector())
    # The exporter has no token check: it answers on loopback unless told which interface.
    address = os.environ.get("GAMBIT_WORKER_METRICS_ADDRESS") or "127.0.0.1"
    start_http_server(int(port), addr=address, registry=registry)
    logger.info("worker_metrics_serving", address=address, port=int(port))


def connect_worker_exporter() -> None:
    """A worker host's main process serves the host's counters once it is up (AppConfig.ready)."""
    celery_signals.worker_ready.connect(_serve_worker_metrics, weak=False)

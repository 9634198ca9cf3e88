"""`/health/`: the database, Redis, and a Celery worker answering on every queue.

One probe pings all three, and the Celery ping may wait its full 2 s. So each web process
answers from its last probe for GAMBIT_HEALTH_CACHE_SECONDS, and only one request of a process
probes at a time (the others answer from the previous probe): a flood of requests costs a
process one probe per window, not a thread per request. The probe is kept in the process
rather than in Redis because Redis is one of the services it reports on.

Which check failed, and why, is for staff and for scrapers holding the metrics token
(`Authorization: Bearer <GAMBIT_METRICS_TOKEN>`); anyone else, a load balancer included, gets
the status code and `{"status": "ok"}` or `{"status": "unavailable"}`.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from health_check.base import HealthCheckResult
from health_check.checks import Database
from health_check.contrib.celery import Ping
from health_check.contrib.redis import Redis
from health_check.views import HealthCheckView
from redis.asyncio import Redis as RedisClient


@dataclass(frozen=True)
class Probe:
    results: list[HealthCheckResult]
    taken_at: float

    @property
    def healthy(self) -> bool:
        return not any(result.error for result in self.results)


latest_probe: Probe | None = None
probing = threading.Lock()


def _is_fresh(probe: Probe) -> bool:
    return time.monotonic() - probe.taken_at < settings.GAMBIT_HEALTH_CACHE_SECONDS


def _has_metrics_token(request: HttpRequest) -> bool:
    token = settings.GAMBIT_METRICS_TOKEN
    return bool(token) and constant_time_compare(
        request.headers.get("Authorization", ""), f"Bearer {token}"
    )


async def may_see_details(request: HttpRequest) -> bool:
    if _has_metrics_token(request):
        return True
    user = await request.auser()
    return bool(user.is_active and user.is_staff)


class HealthView(HealthCheckView):
    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        probe = await self._probe()
        status = 200 if probe.healthy else 500
        if not await may_see_details(request):
            return JsonResponse({"status": "ok" if probe.healthy else "unavailable"}, status=status)
        self.results = probe.results
        wanted = request.GET.get("format") or request.headers.get("Accept", "")
        if "json" in wanted:
            return self.render_to_response_json(status)
        if wanted == "text" or "text/plain" in wanted:
            return self.render_to_response_text(status)
        return self.render_to_response(self.get_context_data(**kwargs), status=status)

    async def _probe(self) -> Probe:
        global latest_probe
        probe = latest_probe
        if probe is not None and _is_fresh(probe):
            return probe
        if not probing.acquire(blocking=False):
            # Another request of this process is probing: the previous probe still answers.
            return probe if probe is not None else await self._run_checks()
        try:
            probe = latest_probe
            if probe is None or not _is_fresh(probe):
                probe = latest_probe = await self._run_checks()
            return probe
        finally:
            probing.release()

    async def _run_checks(self) -> Probe:
        results = await asyncio.gather(*(check.get_result() for check in self.get_checks()))
        return Probe(results=list(results), taken_at=time.monotonic())


health_view = HealthView.as_view(
    checks=[
        Database,
        (Redis, {"client_factory": lambda: RedisClient.from_url(settings.REDIS_URL)}),
        (
            Ping,
            {"timeout": datetime.timedelta(seconds=2), "limit": settings.GAMBIT_HEALTH_WORKERS},
        ),
    ]
)

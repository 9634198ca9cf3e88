"""Per-key rate limits: each StorefrontKey gets its own budget per API scope.

Rates come from `GAMBIT_API_RATES` ("events=6000/min;customers=600/min;..."); a view's
`required_scope` picks its rate, so a bulk customer sync cannot eat the events budget. The
count is a fixed window in Redis (one INCR + EXPIRE per request, atomic, shared by every web
process); over the limit the answer is 429 `rate_limited` with `Retry-After` (seconds to the
window's end).

Redis only paces requests here: when it is unreachable the request goes through (an accepted
event is in PostgreSQL either way), and the outage is logged.
"""

from __future__ import annotations

import math
import time
from typing import Any

import redis
import structlog
from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.models import StorefrontKey
from core.redis_pools import redis_client

logger = structlog.get_logger(__name__)

PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
# A throttle check must never hold a request up for long, Redis down or not.
REDIS_TIMEOUT_SECONDS = 0.25


def parse_rate(rate: str) -> tuple[int, int]:
    """ "600/min" -> (600, 60); ValueError for anything else."""
    count, _, period = rate.partition("/")
    seconds = PERIODS.get(period.strip().lower())
    if seconds is None or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"Rate {rate!r} is not N/s, N/min, N/hour or N/day.")
    return int(count), seconds


def _client() -> redis.Redis:
    return redis_client(timeout=REDIS_TIMEOUT_SECONDS)


class StorefrontKeyRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        key = request.auth
        scope = getattr(view, "required_scope", None)
        rate = settings.GAMBIT_API_RATES.get(scope) if scope else None
        if not isinstance(key, StorefrontKey) or rate is None:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        counter = f"gambit:throttle:{key.pk}:{scope}:{window}"
        try:
            pipe = _client().pipeline(transaction=False)
            pipe.incr(counter)
            pipe.expire(counter, period + 1)
            count = pipe.execute()[0]
        except redis.RedisError as error:
            logger.warning("throttle_unavailable", key=key.prefix, scope=scope, error=str(error))
            return True
        if count <= limit:
            return True
        self._wait = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        # DRF sends Retry-After as this, rounded up: a client waiting that long gets through.
        return math.ceil(self._wait) if self._wait is not None else None

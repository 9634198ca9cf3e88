"""The Redis client for shared sending state (rate limits, circuit breakers, loop leases).

Redis here only saves work or paces it; what was sent is decided in PostgreSQL.
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def client() -> redis.Redis:
    # redis-py's pool notices a fork and reconnects, so a prefork worker child is safe.
    return redis.Redis.from_url(settings.REDIS_URL)

"""One Redis connection pool per process and settings, shared by every thread.

`functools.cache` around `Redis.from_url` is not enough under gunicorn threads: two threads
that ask at once each build a client, the cache keeps one, and the other is garbage collected.
A client built by `from_url` owns its pool and disconnects it when collected, closing sockets
another thread is still reading (seen as a 500 under 100 concurrent requests). Here the pool is
created once under a lock, and clients built on an explicit pool never close it.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_pools: dict[tuple[str, float | None], redis.ConnectionPool] = {}


def redis_client(*, url: str | None = None, timeout: float | None = None) -> redis.Redis:
    """A client on this process's shared pool for `url` (default REDIS_URL); `timeout` bounds
    both connecting and each reply, in seconds."""
    key = (url or settings.REDIS_URL, timeout)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            # The pool notices a fork and reconnects, so prefork worker children are safe.
            pool = _pools[key] = redis.ConnectionPool.from_url(
                key[0], socket_timeout=timeout, socket_connect_timeout=timeout
            )
    return redis.Redis(connection_pool=pool)

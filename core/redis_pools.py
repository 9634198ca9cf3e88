"""One Redis connection pool per process and settings, shared by every thread.

`functools.cache` around `Redis.from_url` is not enough under gunicorn threads: two threads
that ask at once each build a client, the cache keeps one, and the other is garbage collected.
A client built by `from_url` owns its pool and disconnects it when collected, closing sockets
another thread is still reading (seen as a 500 under 100 concurrent requests). Here the client
is created once under a lock, on an explicit pool it never closes; a client is thread-safe and
costs more to build than a command (about 200 reply callbacks), so every caller shares it.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_clients: dict[tuple[str, float | None], redis.Redis] = {}


def redis_client(*, url: str | None = None, timeout: float | None = None) -> redis.Redis:
    """A client on this process's shared pool for `url` (default REDIS_URL); `timeout` bounds
    both connecting and each reply, in seconds."""
    key = (url or settings.REDIS_URL, timeout)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                # The pool notices a fork and reconnects, so prefork worker children are safe.
                pool = redis.ConnectionPool.from_url(
                    key[0], socket_timeout=timeout, socket_connect_timeout=timeout
                )
                client = _clients[key] = redis.Redis(connection_pool=pool)
    return client

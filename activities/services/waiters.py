"""`Prefer: wait`: a worker announces a finished event on Redis; a waiting request wakes up.

Only events a request waits for are announced (`Event.awaited`, see `events.accept_event` and
`events.process_event`); dead letters and events failed for good always are."""

from typing import Any

import redis

from core.redis_pools import redis_client

ANNOUNCEMENT_TTL_SECONDS = 60


def _key(event_id: Any) -> str:
    return f"gambit:event-finished:{event_id}"


def announce(*, event_id: Any) -> None:
    try:
        pipe = redis_client().pipeline()
        pipe.rpush(_key(event_id), 1)
        pipe.expire(_key(event_id), ANNOUNCEMENT_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError:
        pass  # waiters fall back to reading the database when their wait ends


def wait_for(*, event_id: Any, timeout: float) -> bool:
    """Block up to `timeout` seconds for the event's announcement; True if it came."""
    try:
        client = redis_client()
        popped = client.blpop([_key(event_id)], timeout=max(timeout, 0.01))
        if popped:
            # Put it back so every other request waiting on the same event wakes too.
            announce(event_id=event_id)
        return popped is not None
    except redis.RedisError:
        return False

"""Keeping a broadcast's work moving: one planner loop and N sender loops per broadcast.

A loop is a chain of short tasks (one page, one batch each) that re-enqueues itself while
there is work. Each loop holds a lease in Redis (a token with a TTL, renewed as it works), so a
duplicate task (beat/sweeper/redelivery) finds the lease taken and exits, and a loop whose
worker was killed loses its lease after the TTL and is restarted by the sweeper. The lease
only saves work: two loops at once would still plan and claim correctly (row locks, SKIP
LOCKED, unique constraints).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction

from core.redis_pools import redis_client as client
from notifications import enqueue
from notifications.models import Broadcast

# Take the lease if it is free or already ours; extend it.
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_scripts: dict[str, object] = {}


def _script(name: str, source: str):
    if name not in _scripts:
        _scripts[name] = client().register_script(source)
    return _scripts[name]


def lease_seconds() -> int:
    return settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS


def planner_key(broadcast_id: int) -> str:
    return f"notifications:loop:plan:{broadcast_id}"


def sender_key(broadcast_id: int, slot: int) -> str:
    return f"notifications:loop:send:{broadcast_id}:{slot}"


def new_token() -> str:
    return uuid.uuid4().hex


def hold(key: str, token: str, seconds: float | None = None) -> bool:
    ttl_ms = int((seconds if seconds is not None else lease_seconds()) * 1000)
    return bool(_script("hold", _HOLD)(keys=[key], args=[token, ttl_ms]))


def release(key: str, token: str) -> None:
    _script("release", _RELEASE)(keys=[key], args=[token])


def is_held(key: str) -> bool:
    return bool(client().exists(key))


def sender_slots() -> range:
    return range(settings.NOTIFICATIONS_SENDERS_PER_BROADCAST)


def ensure_planner(broadcast_id: int) -> None:
    """Start a planner loop unless one holds the lease."""
    if not is_held(planner_key(broadcast_id)):
        enqueue.plan_broadcast(broadcast_id=broadcast_id, token=new_token())


def ensure_senders(broadcast_id: int) -> None:
    """Start a sender loop in every free slot."""
    for slot in sender_slots():
        if not is_held(sender_key(broadcast_id, slot)):
            enqueue.send_batch(broadcast_id=broadcast_id, slot=slot, token=new_token())


def kick_on_commit(broadcast: Broadcast) -> None:
    """After the current transaction commits: the planner, or (planning done) the senders.
    The planner starts the senders itself after its first page."""
    broadcast_id, planned = broadcast.pk, broadcast.planned_at is not None

    def kick() -> None:
        if planned:
            ensure_senders(broadcast_id)
        else:
            ensure_planner(broadcast_id)

    transaction.on_commit(kick)

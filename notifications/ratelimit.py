"""One messages-per-second budget shared by every worker: GCRA in a Redis script.

Each message *reserves* the next free slot of its bucket and sleeps until that slot; the
script keeps the bucket's "theoretical arrival time" (TAT) in Redis and uses Redis's clock,
so workers on different hosts agree. With no burst allowance, two reserved slots are at least
1/rate apart, which is what keeps every one-second window at or under the limit.
"""

from __future__ import annotations

from core.redis_pools import redis_client as client

# KEYS[1]: the bucket; ARGV[1]: microseconds per message; ARGV[2]: allowed burst (messages).
# Returns the microseconds to wait before sending.
_GCRA = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2]) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now_us)
if tat < now_us then tat = now_us end
local wait = tat - burst - now_us
if wait < 0 then wait = 0 end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now_us) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return math.floor(wait)
"""

_script = None


def _gcra():
    global _script
    if _script is None:
        _script = client().register_script(_GCRA)
    return _script


def bucket_key(name: str) -> str:
    return f"notifications:rate:{name}"


def reserve(name: str, per_second: float, *, burst: int = 0) -> float:
    """Reserve one message in bucket `name`; returns the seconds to wait before sending it."""
    interval = max(int(1_000_000 / per_second), 1)
    return int(_gcra()(keys=[bucket_key(name)], args=[interval, burst])) / 1_000_000

"""A circuit breaker per channel provider, shared by every worker through Redis.

`threshold` provider errors in a row open the circuit for `cooldown` seconds: senders stop
calling the provider and leave their deliveries queued. When the cooldown ends the next batch
tries again (half-open); its first errors open the circuit again, a success closes it.
"""

from __future__ import annotations

from django.conf import settings

from core.redis_pools import redis_client as client


def _keys(name: str) -> tuple[str, str]:
    return f"notifications:circuit:{name}:errors", f"notifications:circuit:{name}:open"


def open_for(name: str) -> float:
    """Seconds the circuit stays open (0: closed)."""
    # A sync client returns an int; redis-py's stubs also allow an awaitable.
    ttl: int = client().pttl(_keys(name)[1])  # type: ignore[assignment]
    return ttl / 1000 if ttl and ttl > 0 else 0.0


def record_errors(name: str, count: int) -> bool:
    """Count consecutive provider errors; returns True when this opened the circuit."""
    errors_key, open_key = _keys(name)
    cooldown_ms = int(settings.NOTIFICATIONS_CIRCUIT_COOLDOWN_SECONDS * 1000)
    pipe = client().pipeline()
    pipe.incrby(errors_key, count)
    pipe.pexpire(errors_key, cooldown_ms * 4)
    errors, _ = pipe.execute()
    if errors >= settings.NOTIFICATIONS_CIRCUIT_THRESHOLD:
        pipe = client().pipeline()
        pipe.set(open_key, 1, px=cooldown_ms)
        pipe.delete(errors_key)
        pipe.execute()
        return True
    return False


def record_success(name: str) -> None:
    client().delete(_keys(name)[0])


def reset(name: str) -> None:
    client().delete(*_keys(name))

"""Channel backends: one module per channel, registered by key, configured from settings.

A backend turns one rendered `Message` into one provider call and says how it went by
returning the provider's message id or raising:
- `Skip(reason)`: the provider says this customer must not get it (WeChat 43101): skipped;
- `PermanentFailure(reason)`: retrying the same call cannot help: failed;
- `TransientFailure(reason)`: outage, timeout, rate limit: retried with backoff, counted by the
  circuit breaker and toward the broadcast's auto-pause.

`session()` opens what a batch shares (an SMTP connection per thread, one HTTP client); its
`send` is called from several threads at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

BACKEND_MODULES = ("email", "wechat", "sms", "webhook")


@dataclass(frozen=True)
class Message:
    delivery_id: int
    address: str
    subject: str
    body: str
    fields: dict[str, str] = field(default_factory=dict)
    provider_template_id: str = ""
    link: str = ""
    customer: str = ""
    broadcast_id: int | None = None
    # Stable for the delivery across attempts, so receivers can dedupe a resend.
    key: str = ""

    @property
    def idempotency_key(self) -> str:
        return self.key or f"gambit-d{self.delivery_id}"


class Skip(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class PermanentFailure(Exception):
    """`provider_fault`: the provider or our configuration is wrong (counts toward auto-pause),
    as opposed to this one customer's address."""

    def __init__(self, reason: str, detail: str = "", *, provider_fault: bool = False) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.provider_fault = provider_fault


class TransientFailure(Exception):
    def __init__(self, reason: str, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.retry_after = retry_after


class Session:
    def send(self, message: Message) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the batch held."""


class Backend:
    key: ClassVar[str]
    # The Customer column holding this channel's address, and the consent flag it needs
    # (None: no per-channel consent; unsubscribing still stops everything).
    address_field: ClassVar[str]
    consent_field: ClassVar[str | None]

    def problems(self) -> list[str]:
        """What is missing from the configuration (shown before a broadcast may start)."""
        return []

    def session(self) -> Session:
        raise NotImplementedError

    @contextmanager
    def open(self) -> Iterator[Session]:
        session = self.session()
        try:
            yield session
        finally:
            session.close()


_registry: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    if cls.key in _registry and _registry[cls.key] is not cls:
        raise ValueError(f"Channel backend {cls.key!r} is registered twice.")
    _registry[cls.key] = cls
    return cls


def _load() -> None:
    if len(_registry) < len(BACKEND_MODULES):
        for name in BACKEND_MODULES:
            importlib.import_module(f"{__name__}.{name}")


def backend_class(channel: str) -> type[Backend]:
    _load()
    return _registry[channel]


def get_backend(channel: str) -> Backend:
    return backend_class(channel)()


# --- shared by the HTTP backends ----------------------------------------------------------


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


def check_http_response(response: httpx.Response) -> dict[str, Any]:
    """Map an HTTP answer to an outcome: 2xx returns the JSON body ({} if none)."""
    status = response.status_code
    if status in (408, 425, 429) or status >= 500:
        raise TransientFailure(
            f"http_{status}", response.text[:500], retry_after=retry_after_seconds(response)
        )
    if status >= 400:
        raise PermanentFailure(
            f"http_{status}", response.text[:500], provider_fault=status in (401, 403, 404)
        )
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def http_client(timeout: float) -> httpx.Client:
    return httpx.Client(
        timeout=timeout,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
    )

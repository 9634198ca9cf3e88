"""Events Gambit raises itself (an order paid, a customer created), below the activity engine.

The apps that raise them (segments) sit below the app that runs chains on them (activities), so
they cannot call the engine. They call `raise_system_event` here instead; the activities app
registers the one recorder at start-up (AppConfig.ready), which writes the outbox row in the
caller's transaction, so the event commits or rolls back with the change that raised it.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import models


class SystemEventRecorder(Protocol):
    def __call__(
        self,
        *,
        channel_code: str,
        customer: models.Model,
        payload: dict[str, Any],
        idempotency_key: str,
    ) -> object: ...


_recorder: SystemEventRecorder | None = None


def register_recorder(recorder: SystemEventRecorder) -> None:
    # One recorder per process, set once at start-up.
    global _recorder
    _recorder = recorder


def raise_system_event(
    *, channel_code: str, customer: models.Model, payload: dict[str, Any], idempotency_key: str
) -> None:
    """Record the event once per `idempotency_key`; call it inside the caller's transaction."""
    if _recorder is None:
        raise ImproperlyConfigured(
            "No system-event recorder is registered: the activities app must be installed."
        )
    _recorder(
        channel_code=channel_code,
        customer=customer,
        payload=payload,
        idempotency_key=idempotency_key,
    )

"""Calls to external benefit systems: scheduled after commit, retried, deduped by the receiver."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import httpx

from activities import enqueue

if TYPE_CHECKING:
    from activities.engine.context import RunContext

WEBHOOK_TIMEOUT_SECONDS = 10.0


class WebhookRejected(Exception):
    """The receiver answered 4xx: retrying the same call would not help."""


def schedule_webhook(
    *, ctx: RunContext, url: str, body: dict[str, Any], idempotency_key: str
) -> None:
    ctx.on_commit(
        partial(enqueue.call_webhook, url=url, body=body, idempotency_key=idempotency_key)
    )


def deliver_webhook(*, url: str, body: dict[str, Any], idempotency_key: str) -> int:
    """POST once; returns the status. Raises httpx errors (retry) or WebhookRejected (give up)."""
    response = httpx.post(
        url,
        json=body,
        headers={"Idempotency-Key": idempotency_key},
        timeout=WEBHOOK_TIMEOUT_SECONDS,
    )
    if 400 <= response.status_code < 500 and response.status_code not in (408, 409, 429):
        raise WebhookRejected(f"{url} answered {response.status_code}")
    response.raise_for_status()
    return response.status_code

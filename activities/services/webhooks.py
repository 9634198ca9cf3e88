"""Calls to external benefit systems (the `call_webhook` step), through an outbox.

The step writes a WebhookCall row in its run's transaction, and the call leaves only after the
run commits; the row, not the Celery message, makes sure it leaves: a send lost to a broker
outage or a crashed worker is found by the sweeper and sent again. Each attempt first claims the
row with a conditional UPDATE (pending and due -> sending), so a duplicate message sends nothing;
the receiver dedupes our own retries by the Idempotency-Key. A failed attempt is retried with
exponential backoff up to GAMBIT_WEBHOOK_MAX_ATTEMPTS, then the call is a dead letter (`failed`)
that an operator can send again. The target is checked when the call is made
(`core.webhook_targets`: public addresses only, the checked address pinned, no redirects) and
every body is signed (`core.signing`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils.translation import gettext

from activities import enqueue
from activities.models import WebhookCall, WebhookCallState, WebhookFailure
from activities.models.webhook import OPEN_STATES
from core.signing import signature_headers
from core.webhook_targets import Answer, TargetRefused, post_to_target, resolve_target

if TYPE_CHECKING:
    from activities.engine.context import RunContext

logger = structlog.get_logger(__name__)

# Answers worth trying again later; any other 4xx means the same call would be refused again.
RETRIED_CLIENT_ERRORS = (408, 409, 425, 429)
# A claim lapses this long after the attempt's hard time limit: its worker is gone by then.
CLAIM_MARGIN = dt.timedelta(seconds=20)
# Calls one sweep transaction locks and sends again; a sweep runs batches until none is left.
SWEEP_BATCH = 500


class _GiveUp(Exception):
    """Retrying the same call cannot help: it becomes a dead letter at once."""

    def __init__(self, reason: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


def schedule_webhook(
    *, ctx: RunContext, url: str, body: dict[str, Any], idempotency_key: str
) -> None:
    """Record the call in the run's transaction; it is sent once the run commits."""
    call = WebhookCall.objects.create(
        run_id=ctx.run.pk,
        url=url,
        body=body,
        idempotency_key=idempotency_key,
        next_attempt_at=Now(),
    )
    ctx.on_commit(partial(enqueue.call_webhook, call_id=call.pk))


def retry_delay(*, attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: doubling, capped."""
    return min(
        settings.GAMBIT_WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
        settings.GAMBIT_WEBHOOK_RETRY_MAX_SECONDS,
    )


def _claim(call_id: int) -> WebhookCall | None:
    claim_lapses = dt.timedelta(seconds=settings.GAMBIT_WEBHOOK_TIME_LIMIT) + CLAIM_MARGIN
    claimed = WebhookCall.objects.filter(
        pk=call_id,
        state=WebhookCallState.PENDING,
        next_attempt_at__lte=Now(),
        attempts__lt=settings.GAMBIT_WEBHOOK_MAX_ATTEMPTS,
    ).update(
        state=WebhookCallState.SENDING,
        attempts=F("attempts") + 1,
        next_attempt_at=Now() + claim_lapses,
    )
    if not claimed:
        return None
    return WebhookCall.objects.only("url", "body", "idempotency_key", "attempts").get(pk=call_id)


def _record(call: WebhookCall, **outcome: Any) -> bool:
    """Write the attempt's outcome if the claim is still this attempt's."""
    return bool(
        WebhookCall.objects.filter(
            pk=call.pk, state=WebhookCallState.SENDING, attempts=call.attempts
        ).update(**outcome)
    )


def _give_up(call: WebhookCall, *, reason: str, error: str, status: int | None = None) -> None:
    _record(
        call,
        state=WebhookCallState.FAILED,
        reason=reason,
        last_error=error,
        response_status=status,
    )
    logger.warning("webhook_dead_letter", call_id=call.pk, reason=reason, error=error)


def _failed_attempt(call: WebhookCall, *, error: str, status: int | None = None) -> float | None:
    if call.attempts >= settings.GAMBIT_WEBHOOK_MAX_ATTEMPTS:
        _give_up(call, reason=WebhookFailure.RETRIES_EXHAUSTED, error=error, status=status)
        return None
    delay = retry_delay(attempts=call.attempts)
    retrying = _record(
        call,
        state=WebhookCallState.PENDING,
        last_error=error,
        response_status=status,
        next_attempt_at=Now() + dt.timedelta(seconds=delay),
    )
    return delay if retrying else None


def _post(call: WebhookCall) -> Answer:
    secret = settings.GAMBIT_WEBHOOK_SECRET
    if not secret:
        raise _GiveUp(
            WebhookFailure.NOT_CONFIGURED,
            gettext("GAMBIT_WEBHOOK_SECRET is not set; webhook calls are never sent unsigned."),
        )
    try:
        target = resolve_target(call.url)
    except TargetRefused as refused:
        raise _GiveUp(refused.code, refused.message) from None
    raw = json.dumps(call.body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": call.idempotency_key,
        **signature_headers(secret=secret, raw=raw),
    }
    return post_to_target(
        target, content=raw, headers=headers, timeout=settings.GAMBIT_WEBHOOK_TIMEOUT_SECONDS
    )


def _answered(call: WebhookCall, answer: Answer) -> float | None:
    status = answer.status
    if 200 <= status < 300:
        _record(
            call,
            state=WebhookCallState.SENT,
            reason="",
            last_error="",
            response_status=status,
            sent_at=Now(),
        )
        return None
    if 300 <= status < 400:
        raise _GiveUp(
            WebhookFailure.REDIRECT_REFUSED,
            gettext(
                "The receiver answered %(status)s, a redirect to %(location)s; "
                "webhooks follow no redirect."
            )
            % {"status": status, "location": answer.location[:500] or "-"},
            status=status,
        )
    if 400 <= status < 500 and status not in RETRIED_CLIENT_ERRORS:
        raise _GiveUp(
            WebhookFailure.REJECTED,
            gettext("The receiver refused the call with HTTP %(status)s: %(answer)s")
            % {"status": status, "answer": answer.excerpt},
            status=status,
        )
    return _failed_attempt(call, error=f"HTTP {status}: {answer.excerpt}", status=status)


def send_webhook_call(*, call_id: int) -> float | None:
    """One attempt at one call, when it is due and no other attempt holds it. Returns the seconds
    until the retry this attempt asks for, or None (sent, dead letter, or not this one's to do)."""
    call = _claim(call_id)
    if call is None:
        return None
    structlog.contextvars.bind_contextvars(webhook_call_id=call.pk)
    try:
        return _answered(call, _post(call))
    except _GiveUp as given_up:
        _give_up(call, reason=given_up.reason, error=given_up.message, status=given_up.status)
        return None
    except (httpx.HTTPError, OSError) as error:
        # Network trouble, or a name that does not resolve right now.
        return _failed_attempt(call, error=f"{type(error).__name__}: {error}"[:2000])
    finally:
        structlog.contextvars.unbind_contextvars("webhook_call_id")


def record_time_limit(*, call_id: int, seconds: int) -> float | None:
    """The attempt was stopped by its soft time limit (a receiver that answers too slowly): it
    counts as failed and is retried later, like any other failure."""
    call = (
        WebhookCall.objects.filter(pk=call_id, state=WebhookCallState.SENDING)
        .only("attempts")
        .first()
    )
    if call is None:
        return None
    error = gettext("The attempt was stopped by its time limit (%(seconds)s s).") % {
        "seconds": seconds
    }
    return _failed_attempt(call, error=error)


def sweep_webhook_calls(*, overdue_after: dt.timedelta) -> int:
    """Send again every open call whose dispatch is overdue: pending and due for longer than
    `overdue_after` (its message was lost), or sending with its claim lapsed (its worker died;
    that attempt counts). Batches are locked with SKIP LOCKED, so sweepers share the work."""
    swept = 0
    while True:
        with transaction.atomic():
            rows = list(
                WebhookCall.objects.select_for_update(skip_locked=True)
                .filter(state__in=OPEN_STATES, next_attempt_at__lt=Now() - overdue_after)
                .order_by("next_attempt_at")
                .values_list("pk", "state", "attempts")[:SWEEP_BATCH]
            )
            lost = [pk for pk, state, _ in rows if state == WebhookCallState.SENDING]
            exhausted = {
                pk for pk, _, attempts in rows if attempts >= settings.GAMBIT_WEBHOOK_MAX_ATTEMPTS
            }
            again = [pk for pk, _, _ in rows if pk not in exhausted]
            WebhookCall.objects.filter(pk__in=lost).update(
                last_error=gettext("The worker making this attempt stopped before it finished.")
            )
            WebhookCall.objects.filter(pk__in=exhausted).update(
                state=WebhookCallState.FAILED, reason=WebhookFailure.RETRIES_EXHAUSTED
            )
            WebhookCall.objects.filter(pk__in=again).update(
                state=WebhookCallState.PENDING, next_attempt_at=Now()
            )
            for call_id in again:
                enqueue.call_webhook_on_commit(call_id=call_id)
        swept += len(rows)
        if len(rows) < SWEEP_BATCH:
            break
    if swept:
        logger.info("webhook_calls_swept", count=swept)
    return swept


def resend_webhook_calls(*, call_ids: Iterable[int]) -> int:
    """Give dead-lettered calls a fresh set of attempts and send them once this transaction
    commits; calls in any other state are left alone. Returns how many."""
    with transaction.atomic():
        ids = list(
            WebhookCall.objects.select_for_update()
            .filter(pk__in=list(call_ids), state=WebhookCallState.FAILED)
            .values_list("pk", flat=True)
        )
        WebhookCall.objects.filter(pk__in=ids).update(
            state=WebhookCallState.PENDING, reason="", attempts=0, next_attempt_at=Now()
        )
        for call_id in ids:
            enqueue.call_webhook_on_commit(call_id=call_id)
    logger.info("webhook_calls_resent", count=len(ids))
    return len(ids)

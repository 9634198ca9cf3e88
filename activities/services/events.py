"""Accepting, dispatching and processing events. The Event row is also the outbox: it is
written in the request's transaction, dispatched on commit, and re-dispatched by the sweeper."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from activities import enqueue, selectors
from activities.engine.errors import StepFailed
from activities.engine.runner import run_activity, skip_activity
from activities.errors import InternalChannel, InvalidPayload, UnknownActivity, UnknownChannel
from activities.models import Activity, Channel, Event, EventFailure, EventState
from activities.services import event_attempts, journeys, redemptions, waiters
from activities.services.conversions import record_conversions
from activities.services.payload_schemas import payload_errors
from core.db.compiled_queries import CompiledQuery
from core.db.rows import insert_unless_taken, save_columns
from core.errors import IdempotencyConflict
from core.metrics import record_event
from core.models import StorefrontKey
from segments.selectors import customer_id_of
from segments.services import ensure_customer

if TYPE_CHECKING:
    from activities.engine.context import RunContext
    from segments.models import Customer

logger = structlog.get_logger(__name__)


def request_hash(*, channel: str, customer: str, payload: Any, activity: str | None) -> str:
    canonical = json.dumps(
        {"channel": channel, "customer": customer, "payload": payload, "activity": activity},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_payload(channel: Channel, payload: dict[str, Any]) -> None:
    if not channel.payload_schema:
        return
    errors = payload_errors(schema=channel.payload_schema, payload=payload)
    if errors:
        raise InvalidPayload(
            f"The payload does not match the schema of channel {channel.code}.",
            details=errors,
        )


def _same_request(event: Event, digest: str) -> Event:
    if event.request_hash != digest:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new event."
        )
    return event


def _repeat(event: Event, digest: str, *, awaited: bool) -> Event:
    _same_request(event, digest)
    if awaited and event.state in event_attempts.UNFINISHED and not event.awaited:
        # If the worker finishes first, this matches nothing and the waiter finds it done.
        Event.objects.filter(pk=event.pk, state__in=event_attempts.UNFINISHED).update(awaited=True)
    return event


# Every storefront event looks these up; the channel's row also brings the customer's id, so
# an event from a known customer costs the request one query less.
_CHANNEL_AND_CUSTOMER = CompiledQuery(
    lambda code, external_id: Channel.objects.filter(code=code).annotate(
        known_customer_id=Subquery(customer_id_of(external_id=external_id))
    )[:1],
    code=str,
    external_id=str,
)
_ACTIVITY_ID = CompiledQuery(
    lambda code: Activity.objects.filter(code=code).values_list("pk")[:1], code=str
)


@dataclass(frozen=True)
class _Target:
    channel: Channel
    activity_id: int | None
    # None: the storefront never sent this customer before.
    known_customer_id: int | None


def _validated_target(
    *,
    channel_code: str,
    customer_external_id: str,
    payload: dict[str, Any],
    activity_code: str | None,
) -> _Target:
    found = _CHANNEL_AND_CUSTOMER.instances(code=channel_code, external_id=customer_external_id)
    if not found:
        raise UnknownChannel(f"There is no channel {channel_code!r}.")
    channel = found[0]
    if channel.internal:
        raise InternalChannel(
            f"Channel {channel_code!r} is fired by Gambit only (it credits other customers)."
        )
    _check_payload(channel, payload)
    activity_id = None
    if activity_code is not None:
        ids = _ACTIVITY_ID.rows(code=activity_code)
        if not ids:
            raise UnknownActivity(f"There is no activity {activity_code!r}.")
        activity_id = ids[0][0]
    return _Target(
        channel=channel,
        activity_id=activity_id,
        known_customer_id=channel.known_customer_id,
    )


def accept_event(
    *,
    client: StorefrontKey,
    idempotency_key: str,
    channel_code: str,
    customer_external_id: str,
    payload: dict[str, Any],
    activity_code: str | None = None,
    awaited: bool = False,
) -> tuple[Event, bool]:
    """Record one storefront event exactly once per (client, key); returns (event, created).

    `awaited`: the request will wait for the result (`Prefer: wait`), so the worker must say
    when the event is finished; a repeat of the request marks its unfinished event the same way.

    The insert itself decides whether the key is new (`ON CONFLICT DO NOTHING`), so a new
    event costs no lookup first and no savepoint, and of 100 concurrent requests with one key
    exactly one inserts. Each statement commits on its own: a customer created for an event
    that then turns out to be a repeat is harmless, and the event row commits before it is
    dispatched.
    """
    digest = request_hash(
        channel=channel_code,
        customer=customer_external_id,
        payload=payload,
        activity=activity_code,
    )
    try:
        target = _validated_target(
            channel_code=channel_code,
            customer_external_id=customer_external_id,
            payload=payload,
            activity_code=activity_code,
        )
    except (UnknownChannel, InternalChannel, InvalidPayload, UnknownActivity):
        # A retry of an accepted request gets its event, even if the configuration changed.
        existing = Event.objects.filter(client=client, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return _repeat(existing, digest, awaited=awaited), False

    channel = target.channel
    customer_id = target.known_customer_id or ensure_customer(external_id=customer_external_id).pk
    event = insert_unless_taken(
        Event,
        client_id=client.pk,
        idempotency_key=idempotency_key,
        request_hash=digest,
        channel_id=channel.pk,
        customer_id=customer_id,
        payload=payload,
        activity_id=target.activity_id,
        dispatched_at=timezone.now(),
        awaited=awaited,
    )
    if event is None:
        existing = Event.objects.get(client=client, idempotency_key=idempotency_key)
        return _repeat(existing, digest, awaited=awaited), False
    transaction.on_commit(lambda: dispatch_event(event_id=event.pk))
    record_event(source="storefront", channel=channel.code)
    logger.info(
        "event_accepted",
        event_id=str(event.pk),
        channel=channel_code,
        customer=customer_external_id,
    )
    return event, True


def record_system_event(
    *, channel_code: str, customer: Customer, payload: dict[str, Any], idempotency_key: str
) -> Event:
    """An event Gambit itself raises (an order paid, ...): recorded once per key, run after
    the caller's transaction commits. Call it inside that transaction."""
    channel, _ = Channel.objects.get_or_create(code=channel_code)
    event, created = Event.objects.get_or_create(
        client=None,
        idempotency_key=idempotency_key,
        defaults={
            "request_hash": "",
            "channel": channel,
            "customer": customer,
            "payload": payload,
            "dispatched_at": timezone.now(),
        },
    )
    if created:
        transaction.on_commit(lambda: dispatch_event(event_id=event.pk))
        record_event(source="system", channel=channel_code)
        # Coupons named on an order follow it whether or not an activity listens to orders.
        redemptions.follow_order(
            channel_code=channel_code,
            customer_external_id=customer.external_id,
            payload=payload,
        )
    return event


def emit_event(
    *,
    ctx: RunContext,
    channel_code: str,
    payload: dict[str, Any],
    credit_customer_ids: Sequence[int] = (),
) -> list[Event]:
    """An event fired by a chain step; runs after the emitting run commits.

    With `credit_customer_ids` the step credits other customers instead: one event each, theirs,
    for this activity only (another activity on the same channel must not pay for this one's
    team or help request), keyed by the run, the step and the customer, so a run delivered
    twice credits each customer once."""
    depth = ctx.event.depth + 1
    if depth > settings.GAMBIT_MAX_EMIT_DEPTH:
        raise StepFailed(
            "emit_depth_exceeded",
            f"Events may chain at most {settings.GAMBIT_MAX_EMIT_DEPTH} deep; "
            "this looks like a loop.",
        )
    channel = Channel.objects.filter(code=channel_code).first()
    if channel is None:
        raise StepFailed("unknown_channel", f"There is no channel {channel_code!r}.")
    key = f"emit:{ctx.run.pk}:{ctx.step_index}"
    targets: list[tuple[str, int, int | None]] = [
        (f"{key}:{customer_id}", customer_id, ctx.activity.id)
        for customer_id in credit_customer_ids
    ] or [(key, ctx.customer.pk, None)]
    events = Event.objects.bulk_create(
        Event(
            idempotency_key=idempotency_key,
            request_hash="",
            channel=channel,
            customer_id=customer_id,
            activity_id=activity_id,
            payload=payload,
            parent_run=ctx.run,
            depth=depth,
            dispatched_at=timezone.now(),
        )
        for idempotency_key, customer_id, activity_id in targets
    )
    for event in events:
        ctx.on_commit(partial(dispatch_event, event_id=event.pk))
        record_event(source="emitted", channel=channel_code)
    return events


def dispatch_event(*, event_id: Any) -> bool:
    """Hand the event to a worker. A broker outage is logged, not raised: the sweeper retries."""
    return enqueue.run_event(event_id=event_id)


def sweep_unfinished_events(*, older_than: dt.timedelta, limit: int = 1000) -> int:
    """Re-dispatch events still pending/running after `older_than` (crash, broker outage);
    those that used up their attempts become dead letters instead."""
    cutoff = timezone.now() - older_than
    event_attempts.dead_letter_exhausted(events=Event.objects.filter(dispatched_at__lt=cutoff))
    ids = list(
        Event.objects.filter(
            state__in=[EventState.PENDING, EventState.RUNNING],
            dispatched_at__lt=cutoff,
            attempts__lt=settings.GAMBIT_EVENT_MAX_ATTEMPTS,
        )
        .order_by("dispatched_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return 0
    Event.objects.filter(pk__in=ids).update(dispatched_at=timezone.now())
    dispatched = sum(dispatch_event(event_id=event_id) for event_id in ids)
    logger.info("events_swept", count=len(ids), dispatched=dispatched)
    return dispatched


def process_event(*, event_id: Any) -> Event | None:
    """Run every bound activity's chain for the event; safe to call any number of times.

    The whole event is one transaction (each run a savepoint inside it, see the runner): one
    commit per event, and a crash part-way leaves it pending for redelivery with nothing
    half-written. The event goes pending -> done without a visible `running` in between;
    `running` marks an event whose attempt failed and is waiting for its retry. Each call
    counts one attempt first (`event_attempts`), committed whatever the attempt then does.
    """
    if not event_attempts.start_attempt(event_id=event_id):
        return selectors.event_to_process(event_id=event_id)
    with transaction.atomic():
        event = selectors.event_to_process(event_id=event_id)
        if event is None or event.state in (EventState.DONE, EventState.FAILED):
            return event
        structlog.contextvars.bind_contextvars(
            event_id=str(event.pk), customer=event.customer.external_id
        )
        runnable = selectors.runnable_activities(
            channel_id=event.channel_id, activity_id=event.activity_id
        )
        for activity in runnable:
            run_activity(event=event, activity=activity)
        if event.activity_id is not None and not runnable:
            skip_activity(event=event, activity_id=event.activity_id, reason="activity_not_running")
        if event.customer_waits:
            # Most customers wait for nothing; the lookup with its locks would cost the event
            # path more than all its steps (bench_engine).
            journeys.on_event(event=event)
        if event.has_conversion_goals:
            record_conversions(event=event)
        event.finish()
        event.finished_at = timezone.now()
        # Read back with the write: a repeated request may have started waiting meanwhile.
        if save_columns(event, "state", "finished_at", "error", returning="awaited"):
            # Announcing costs a Redis round trip; most events have nobody waiting.
            transaction.on_commit(lambda: waiters.announce(event_id=event.pk))
    structlog.contextvars.unbind_contextvars("event_id", "customer")
    return event


def record_retry(*, event_id: Any, error: str) -> None:
    """An attempt failed with a database error and the task will retry: say so on the event."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None or event.state in (EventState.DONE, EventState.FAILED):
        return
    event.start()
    event.error = error[:2000]
    event.save(update_fields=["state", "error"])


def fail_event(*, event_id: Any, error: str) -> None:
    event = Event.objects.filter(pk=event_id).first()
    if event is None or event.state in (EventState.DONE, EventState.FAILED):
        return
    event.fail(error=error[:2000])
    event.failure_reason = EventFailure.RETRIES_EXHAUSTED
    event.finished_at = timezone.now()
    event.save(update_fields=["state", "finished_at", "error", "failure_reason"])
    waiters.announce(event_id=event.pk)

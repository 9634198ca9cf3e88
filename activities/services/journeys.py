"""Waiting runs: the beat-driven resume of those due, events that resume or end them, and
cancelling them (an ended activity, an operator).

Due runs are claimed in batches by `SELECT ... FOR UPDATE SKIP LOCKED`, marked resumed by a
conditional UPDATE and resumed in the same transaction, so several sweeps can run at once
(GAMBIT_JOURNEY_SWEEPERS), each row is resumed by exactly one of them, and a worker killed
mid-batch leaves its rows waiting for the next sweep (nothing of the batch committed). A
paused activity's runs are not claimed (they wait on, and resume late once it runs again);
an ended activity's runs are cancelled with the reason in the same transaction as the end.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import structlog
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from psycopg import sql

from activities.engine.journeys import compiled_journey
from activities.engine.resume_batch import DueRun, PlainGrant, plain_tail, resume_plainly
from activities.engine.resumption import claim, resume_waiting
from activities.engine.waits import ELAPSED, EVENT, TIMEOUT
from activities.models import (
    Activity,
    ActivityState,
    ChainRun,
    Event,
    RunOutcome,
    WaitingRun,
    WaitState,
)
from activities.selectors import RunnableActivity

logger = structlog.get_logger(__name__)

REASON_ACTIVITY_ENDED = "activity_ended"
REASON_OPERATOR = "cancelled_by_operator"
REASON_EXITED = "exited"


def _runnable(activity_ids: set[int]) -> dict[int, RunnableActivity]:
    rows = Activity.objects.filter(pk__in=activity_ids, state=ActivityState.RUNNING).values_list(
        "pk", "template_id", "template__version", "config_version", "starts_at", "ends_at"
    )
    return {row[0]: RunnableActivity(*row) for row in rows}


def _due_outcome(*, arrived_event_id: uuid.UUID | None, channel_id: int | None) -> str:
    if arrived_event_id is not None:
        return EVENT
    return TIMEOUT if channel_id is not None else ELAPSED


_CLAIMED = (
    "run_id",
    "activity_id",
    "customer_id",
    "journey_id",
    "step",
    "arrived_event_id",
    "channel_id",
)


def resume_due_batch(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Claim up to `limit` due runs of running activities and resume them; one transaction.

    Runs whose remaining steps are plain grants resume set-based (`resume_plainly`), the first
    of each (activity, customer) in the batch; the others one by one, after them."""
    with transaction.atomic():
        now = now or timezone.now()
        batch = list(
            WaitingRun.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=WaitState.WAITING, due_at__lte=now, activity__state=ActivityState.RUNNING)
            .order_by("due_at")
            .values_list(*_CLAIMED)[:limit]
        )
        if not batch:
            return 0
        # Locked by this transaction, so every one of them moves; a pause committed since the
        # rows were read only holds back the next batch.
        activities = _runnable({row[1] for row in batch})
        batch = [row for row in batch if row[1] in activities]
        claim(waiting_ids=[row[0] for row in batch], now=now)
        plain: list[DueRun] = []
        tails: dict[int, tuple[PlainGrant, ...]] = {}
        one_by_one: list[int] = []
        seen: set[tuple[int, int]] = set()
        for run_id, activity_id, customer_id, journey_id, step, arrived_id, channel_id in batch:
            activity = activities[activity_id]
            tail = plain_tail(
                journey_id=journey_id,
                step=step,
                activity_id=activity_id,
                config_version=activity.config_version,
            )
            if tail is None or (activity_id, customer_id) in seen:
                one_by_one.append(run_id)
                continue
            seen.add((activity_id, customer_id))
            tails[run_id] = tail
            plain.append(
                DueRun(
                    run_id=run_id,
                    activity_id=activity_id,
                    customer_id=customer_id,
                    journey=compiled_journey(journey_id),
                    step=step,
                    outcome=_due_outcome(arrived_event_id=arrived_id, channel_id=channel_id),
                )
            )
        if plain:
            resume_plainly(plain, tails=tails)
        if one_by_one:
            # Already locked and claimed above; read whole for the steps to run.
            for waiting in (
                WaitingRun.objects.select_related("arrived_event", "run__event", "run__customer")
                .filter(pk__in=one_by_one)
                .order_by("due_at", "pk")
            ):
                resume_waiting(
                    waiting=waiting,
                    activity=activities[waiting.activity_id],
                    outcome=_due_outcome(
                        arrived_event_id=waiting.arrived_event_id, channel_id=waiting.channel_id
                    ),
                    arrived=waiting.arrived_event,
                    now=now,
                    claimed=True,
                )
    return len(batch)


# The advisory lock class of the sweep slots: pg_try_advisory_lock(class, slot), two int4 keys,
# a space apart from the one-key locks used elsewhere.
SWEEP_LOCK_CLASS = 0x4A524E59


def _take_slot(slots: int) -> int | None:
    """One of `slots` session advisory locks, or None when every one is held. A worker that
    dies drops its connection and with it the lock."""
    with connection.cursor() as cursor:
        for slot in range(slots):
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [SWEEP_LOCK_CLASS, slot])
            if cursor.fetchone()[0]:
                return slot
    return None


def resume_due(*, limit: int, seconds: float, sweepers: int) -> int:
    """Resume due runs batch after batch until none is left or `seconds` have passed.

    At most `sweepers` sweeps run at once (the others return at once): beat sends one every
    few seconds and each may run for most of a minute, and sweeps beyond that would take every
    worker slot from the storefront's events on the same worker."""
    slot = _take_slot(sweepers)
    if slot is None:
        return 0
    deadline = time.monotonic() + seconds
    total = 0
    try:
        while time.monotonic() < deadline:
            resumed = resume_due_batch(limit=limit)
            if not resumed:
                break
            total += resumed
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [SWEEP_LOCK_CLASS, slot])
    if total:
        logger.info("waits_resumed", count=total)
    return total


def on_event(*, event: Event) -> None:
    """Called in the event's transaction, after its runs: the customer's waiting runs that
    watch this channel end (an exit rule) or resume (the awaited event)."""
    waiting_runs = (
        WaitingRun.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("run__event", "run__customer")
        .filter(
            customer_id=event.customer_id,
            state=WaitState.WAITING,
            watching__contains=[event.channel_id],
            created_at__lte=event.created_at,
        )
        .order_by("pk")
    )
    if event.activity_id is not None:
        waiting_runs = waiting_runs.filter(activity_id=event.activity_id)
    # A run never waits for the event that started it.
    found = [w for w in waiting_runs if w.run.event_id != event.pk]
    if not found:
        return
    activities = _runnable({w.activity_id for w in found})
    payload = event.payload or {}
    now = timezone.now()
    for waiting in found:
        journey = compiled_journey(waiting.journey_id)
        origin = waiting.run.event.payload or {}
        if journey.exits_on(channel_code=event.channel.code, payload=payload, origin=origin):
            _cancel(where="run", value=waiting.pk, reason=REASON_EXITED, now=now)
            continue
        if waiting.channel_id != event.channel_id or not journey.awaits(
            step=waiting.step, payload=payload, match=waiting.match
        ):
            continue
        activity = activities.get(waiting.activity_id)
        if activity is not None:
            resume_waiting(
                waiting=waiting, activity=activity, outcome=EVENT, arrived=event, now=now
            )
        else:
            # Paused: remember the event; the run resumes on it once the activity runs again.
            WaitingRun.objects.filter(
                pk=waiting.pk, state=WaitState.WAITING, arrived_event__isnull=True
            ).update(arrived_event=event, due_at=now)


def _columns(model: type[Model]) -> dict[str, sql.Composable]:
    return {f.name: sql.Identifier(f.column) for f in model._meta.concrete_fields}


def _cancel(*, where: str, value: int, reason: str, now: dt.datetime) -> int:
    """Cancel the waiting runs whose `where` field (run or activity) is `value`, and mark their
    ChainRuns, in one statement: the waiting rows first (a sweep resuming one of them holds
    its row lock, and this waits for it), then the runs of exactly those it cancelled."""
    waits = _columns(WaitingRun)
    runs = _columns(ChainRun)
    statement = sql.SQL(
        "WITH cancelled AS ("
        " UPDATE {waits} SET {state} = %s, {reason} = %s, {finished} = %s"
        " WHERE {state} = %s AND {where} = %s RETURNING {run})"
        " UPDATE {runs} SET {outcome} = %s, {run_reason} = %s"
        " FROM cancelled WHERE {runs}.{run_pk} = cancelled.{run}"
    ).format(
        waits=sql.Identifier(WaitingRun._meta.db_table),
        runs=sql.Identifier(ChainRun._meta.db_table),
        state=waits["state"],
        reason=waits["reason"],
        finished=waits["finished_at"],
        run=waits["run"],
        where=waits[where],
        outcome=runs["outcome"],
        run_reason=runs["reason"],
        run_pk=runs["id"],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(None),
            [
                WaitState.CANCELLED.value,
                reason,
                now,
                WaitState.WAITING.value,
                value,
                RunOutcome.CANCELLED.value,
                reason,
            ],
        )
        return cursor.rowcount


def cancel_for_activity(*, activity_id: int, reason: str = REASON_ACTIVITY_ENDED) -> int:
    """Cancel every run waiting in the activity (it ended); call in the end's transaction."""
    cancelled = _cancel(where="activity", value=activity_id, reason=reason, now=timezone.now())
    if cancelled:
        logger.info("waits_cancelled", activity_id=activity_id, count=cancelled, reason=reason)
    return cancelled


def cancel_run(*, run_id: int, reason: str = REASON_OPERATOR) -> bool:
    """Cancel one customer's waiting run; False when it was not waiting (any more)."""
    with transaction.atomic():
        cancelled = _cancel(where="run", value=run_id, reason=reason, now=timezone.now())
    if cancelled:
        logger.info("wait_cancelled", run_id=run_id, reason=reason)
    return bool(cancelled)

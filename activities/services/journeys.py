"""Waiting runs: the beat-driven resume of those due, events that resume or end them, and
cancelling them (an ended activity, an operator).

Due runs are claimed in batches by `SELECT ... FOR UPDATE SKIP LOCKED`, marked resumed by a
conditional UPDATE and resumed in the same transaction, so any number of workers can sweep at
once, each row is resumed by exactly one of them, and a worker killed mid-batch leaves its
rows waiting for the next sweep (nothing of the batch committed). A paused activity's runs
are not claimed (they wait on, and resume late once it runs again); an ended activity's runs
are cancelled with the reason in the same transaction as the end.
"""

from __future__ import annotations

import datetime as dt
import time

import structlog
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from psycopg import sql

from activities.engine.journeys import compiled_journey
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


def _due_outcome(waiting: WaitingRun) -> str:
    if waiting.arrived_event_id is not None:
        return EVENT
    return TIMEOUT if waiting.channel_id is not None else ELAPSED


def resume_due_batch(*, now: dt.datetime | None = None, limit: int = 200) -> int:
    """Claim up to `limit` due runs of running activities and resume them; one transaction."""
    with transaction.atomic():
        now = now or timezone.now()
        batch = list(
            WaitingRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("arrived_event", "run__event", "run__customer")
            .filter(state=WaitState.WAITING, due_at__lte=now, activity__state=ActivityState.RUNNING)
            .order_by("due_at")[:limit]
        )
        if not batch:
            return 0
        # Locked by this transaction, so every one of them moves; a pause committed since the
        # rows were read only holds back the next batch.
        activities = _runnable({w.activity_id for w in batch})
        batch = [w for w in batch if w.activity_id in activities]
        claim(waiting_ids=[w.pk for w in batch], now=now)
        for waiting in batch:
            resume_waiting(
                waiting=waiting,
                activity=activities[waiting.activity_id],
                outcome=_due_outcome(waiting),
                arrived=waiting.arrived_event,
                now=now,
                claimed=True,
            )
    return len(batch)


def resume_due(*, limit: int, seconds: float) -> int:
    """Resume due runs batch after batch until none is left or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        resumed = resume_due_batch(limit=limit)
        if not resumed:
            break
        total += resumed
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

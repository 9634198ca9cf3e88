"""Resuming a waiting run: the steps after its wait, on the journey version it started with.

Called inside the caller's transaction (a sweep's batch, an event's transaction) with the
WaitingRun row locked by the caller. The row leaves `waiting` by a conditional UPDATE in that
same transaction, together with everything the remaining steps write: if the worker dies
before the commit, none of it happened and the row is due again; once committed, no other
sweep or event can take it. What leaves the database (messages, webhooks) is sent on commit,
keyed by the run and step, as for any run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import structlog
from django.db import transaction
from django.db.models import Case, Value, When

from activities.models import ChainRun, Event, WaitingRun, WaitState
from activities.selectors import RunnableActivity

from .cache import activity_config
from .context import RunContext
from .journeys import compiled_journey
from .runner import _finish, _participation, _run_steps, _Verdict, complete
from .waits import ELAPSED, EVENT, TIMEOUT

logger = structlog.get_logger(__name__)


def claim(*, waiting_ids: list[int], now: dt.datetime) -> int:
    """waiting -> resumed for those still waiting (one conditional UPDATE); how many moved.
    The reason says how the wait ended: the awaited event, its timeout, or the time was up."""
    return WaitingRun.objects.filter(pk__in=waiting_ids, state=WaitState.WAITING).update(
        state=WaitState.RESUMED,
        finished_at=now,
        reason=Case(
            When(arrived_event__isnull=False, then=Value(EVENT)),
            When(channel__isnull=False, then=Value(TIMEOUT)),
            default=Value(ELAPSED),
        ),
    )


def _granted_before(run: ChainRun) -> list[Any]:
    granted = (run.result or {}).get("granted")
    return list(granted) if isinstance(granted, list) else []


def resume_waiting(
    *,
    waiting: WaitingRun,
    activity: RunnableActivity,
    outcome: str,
    arrived: Event | None,
    now: dt.datetime,
    claimed: bool = False,
) -> ChainRun | None:
    """Run the steps after the wait; None when the row was no longer waiting. `claimed`: the
    caller already moved the row to resumed (`claim`) in this transaction."""
    if not claimed:
        moved = WaitingRun.objects.filter(pk=waiting.pk, state=WaitState.WAITING).update(
            state=WaitState.RESUMED, reason=outcome, finished_at=now
        )
        if not moved:
            return None
    started = time.perf_counter()
    journey = compiled_journey(waiting.journey_id)
    # Loaded with the row by the sweep and the event path (select_related).
    run = waiting.run
    config = activity_config(activity.id, activity.config_version)
    trace: list[dict[str, Any]] = list(run.steps or [])
    trace.append(
        {
            "processor": journey.steps[waiting.step].processor.key,
            "outcome": "resumed",
            "reason": outcome,
            "ms": 0,
        }
    )
    durable: list[Callable[[], None]] = []
    earlier = _granted_before(run)
    try:
        with transaction.atomic():
            participation = _participation(
                activity_id=activity.id, customer_id=run.customer_id, lock=journey.requires_lock
            )
            ctx = RunContext(
                event=run.event,
                activity=config,
                customer=run.customer,
                participation=participation,
                run=run,
                now=now,
                durable=durable,
                vars=dict(waiting.vars or {}),
                wait={"outcome": outcome, "event": arrived.payload if arrived else {}},
            )
            _run_steps(journey.steps[waiting.step + 1 :], ctx, trace)
            complete(
                run,
                ctx=ctx,
                trace=trace,
                started=started,
                template_version=run.template_version,
                journey=lambda: journey,
                earlier=earlier,
            )
    except _Verdict as verdict:
        for write in durable:
            write()
        _finish(
            run,
            outcome=verdict.outcome,
            reason=verdict.reason,
            steps=trace,
            result={"granted": earlier},
            error=verdict.error,
            started=started,
            template_version=run.template_version,
        )
    logger.info("run_resumed", run_id=run.pk, wait=outcome, outcome=run.outcome)
    return run

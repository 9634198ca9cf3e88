"""Runs one activity's chain for one event: the heart of the engine.

A run is one savepoint inside its event's transaction (`process_event`): the ChainRun row
(unique per event and activity) is created-or-locked first, so a duplicate delivery waits and
then finds the run finished; the participation row is locked when the chain asks for it. A
rejected or failed run rolls back everything its steps wrote and records only its outcome and
trace, plus the writes a step asked to keep (`ctx.keep`: an experiment exposure). What leaves
the database is scheduled on commit.

A step may branch (`Processor.branch`, a split's variant): the branch's steps run right after
it, in the same transaction, with the same policies, and their trace entries carry the
branch's label as `variant`.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, transaction
from django.utils import timezone

from activities.models import ChainRun, Event, Participation, RunOutcome
from activities.selectors import RunnableActivity, customer_in_audience
from core.db.rows import insert_or_lock, save_columns
from core.metrics import record_run

from .cache import CompiledStep, activity_config, compiled_chain
from .context import RunContext
from .errors import Rejected, StepFailed
from .journeys import CompiledJourney, journey_for, suspend

logger = structlog.get_logger(__name__)


@dataclass
class _Verdict(Exception):
    outcome: str
    reason: str
    error: str = ""


# A branch's steps are numbered from here on, clear of the chain's own steps, so idempotency
# keys built from `ctx.step_index` stay unique within a run.
BRANCH_BASE = 10_000
BRANCH_STRIDE = 100


def _trace(
    processor: str, outcome: str, started: float, reason: str = "", variant: str | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "processor": processor,
        "outcome": outcome,
        "ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if reason:
        entry["reason"] = reason
    if variant is not None:
        entry["variant"] = variant
    return entry


def _run_steps(
    steps: tuple[CompiledStep, ...],
    ctx: RunContext,
    trace: list[dict[str, Any]],
    *,
    variant: str | None = None,
    first_index: int = 0,
) -> None:
    for step in steps:
        ctx.step_index = first_index + step.index
        key = step.processor.key
        started = time.perf_counter()
        if step.when is not None and not step.when(ctx.get):
            trace.append(_trace(key, "skipped", started, "condition_false", variant))
            continue
        try:
            if step.abort_on_error:
                _run_step(step.processor, ctx)
            else:
                with transaction.atomic():
                    _run_step(step.processor, ctx)
        except Rejected as rejected:
            trace.append(_trace(key, "rejected", started, rejected.reason, variant))
            raise _Verdict(RunOutcome.REJECTED, rejected.reason) from None
        except (DatabaseError, SoftTimeLimitExceeded):
            # Not the step's failure: the whole attempt ends, and the event's retry decides.
            raise
        except Exception as error:
            reason = error.reason if isinstance(error, StepFailed) else f"{key}_error"
            trace.append(_trace(key, "failed", started, reason, variant))
            logger.warning("step_failed", processor=key, reason=reason, exc_info=True)
            if step.abort_on_error:
                raise _Verdict(
                    RunOutcome.FAILED, reason, "".join(traceback.format_exception_only(error))
                ) from None
            continue
        entry = _trace(key, "passed", started, variant=variant)
        trace.append(entry)
        if ctx.suspension is not None:
            # A wait step: the run stops here and a sweep or an event resumes it later.
            if variant is not None:
                raise _Verdict(RunOutcome.FAILED, "wait_inside_variant")
            ctx.suspension.step = step.index
            return
        branch = step.processor.branch(ctx)
        if branch is not None:
            entry["assigned"] = branch.label
            _run_steps(
                branch.steps,
                ctx,
                trace,
                variant=branch.label,
                first_index=BRANCH_BASE * (ctx.step_index + 1) + BRANCH_STRIDE * branch.number,
            )


def _run_step(processor: Any, ctx: RunContext) -> None:
    if not processor.validate(ctx):
        raise Rejected(processor.reason(ctx))
    processor.process(ctx)


def _locked_run(*, event: Event, activity_id: int) -> ChainRun:
    # A concurrent duplicate delivery blocks here until the first run commits.
    return insert_or_lock(
        ChainRun,
        unique=("event_id", "activity_id"),
        event_id=event.pk,
        activity_id=activity_id,
        customer_id=event.customer_id,
    )


def _participation(*, activity_id: int, customer_id: int, lock: bool) -> Participation:
    if lock:
        return insert_or_lock(
            Participation,
            unique=("activity_id", "customer_id"),
            activity_id=activity_id,
            customer_id=customer_id,
        )
    Participation.objects.bulk_create(
        [Participation(activity_id=activity_id, customer_id=customer_id)], ignore_conflicts=True
    )
    return Participation.objects.get(activity_id=activity_id, customer_id=customer_id)


def _finish(
    run: ChainRun,
    *,
    outcome: str,
    reason: str,
    steps: list[dict[str, Any]],
    result: dict[str, Any],
    error: str,
    started: float,
    template_version: int,
) -> None:
    run.outcome = outcome
    run.reason = reason
    run.steps = steps
    run.result = result
    run.error = error
    run.template_version = template_version
    run.finished_at = timezone.now()
    run.duration_ms = round((time.perf_counter() - started) * 1000, 3)
    save_columns(
        run,
        "outcome",
        "reason",
        "steps",
        "result",
        "error",
        "template_version",
        "finished_at",
        "duration_ms",
    )
    record_run(outcome=outcome, seconds=run.duration_ms / 1000)


def complete(
    run: ChainRun,
    *,
    ctx: RunContext,
    trace: list[dict[str, Any]],
    started: float,
    template_version: int,
    journey: Callable[[], CompiledJourney],
    earlier: list[Any] | None = None,
) -> None:
    """The steps ran to the chain's end or to a wait step: the run's outcome, result and trace
    are written (a waiting one also holds its WaitingRun row, on the version `journey` gives),
    and the steps' effects are scheduled on commit. `earlier`: what the run granted before it
    waited, which a resumed run's result keeps."""
    granted = [
        *(earlier or []),
        *(
            {"benefit": g.benefit.code, "kind": g.benefit.kind, "quantity": g.quantity}
            for g in ctx.grants
        ),
    ]
    outcome = RunOutcome.GRANTED if granted else RunOutcome.COMPLETED
    result = ctx.result or {"granted": granted}
    if ctx.suspension is not None:
        outcome = RunOutcome.WAITING
        result = {**result, **suspend(ctx=ctx, journey=journey())}
    _finish(
        run,
        outcome=outcome,
        reason=ctx.reason,
        steps=trace,
        result=result,
        error="",
        started=started,
        template_version=template_version,
    )
    for effect in ctx.effects:
        transaction.on_commit(effect)


def run_activity(*, event: Event, activity: RunnableActivity) -> ChainRun:
    started = time.perf_counter()
    chain = compiled_chain(activity.template_id, activity.template_version, event.channel_id)
    config = activity_config(activity.id, activity.config_version)
    structlog.contextvars.bind_contextvars(activity=config.code)
    trace: list[dict[str, Any]] = []
    durable: list[Callable[[], None]] = []
    try:
        with transaction.atomic():
            run = _locked_run(event=event, activity_id=activity.id)
            if run.finished:
                return run
            structlog.contextvars.bind_contextvars(run_id=run.pk)
            now = timezone.now()
            if not activity.is_open(now):
                raise _Verdict(RunOutcome.SKIPPED, "outside_window")
            if config.segment_id and not customer_in_audience(
                segment_id=config.segment_id, customer_id=event.customer_id
            ):
                raise _Verdict(RunOutcome.REJECTED, "not_in_segment")
            participation = _participation(
                activity_id=activity.id, customer_id=event.customer_id, lock=chain.requires_lock
            )
            ctx = RunContext(
                event=event,
                activity=config,
                customer=event.customer,
                participation=participation,
                run=run,
                now=now,
                durable=durable,
            )
            _run_steps(chain.steps, ctx, trace)
            complete(
                run,
                ctx=ctx,
                trace=trace,
                started=started,
                template_version=activity.template_version,
                journey=lambda: journey_for(
                    chain=chain, template_version=activity.template_version
                ),
            )
    except _Verdict as verdict:
        with transaction.atomic():
            run = _locked_run(event=event, activity_id=activity.id)
            if not run.finished:
                for write in durable:
                    write()
                _finish(
                    run,
                    outcome=verdict.outcome,
                    reason=verdict.reason,
                    steps=trace,
                    result={},
                    error=verdict.error,
                    started=started,
                    template_version=activity.template_version,
                )
    logger.info(
        "run_finished", run_id=run.pk, outcome=run.outcome, reason=run.reason, ms=run.duration_ms
    )
    structlog.contextvars.unbind_contextvars("activity", "run_id")
    return run


def skip_activity(*, event: Event, activity_id: int, reason: str) -> ChainRun:
    with transaction.atomic():
        run = _locked_run(event=event, activity_id=activity_id)
        if not run.finished:
            _finish(
                run,
                outcome=RunOutcome.SKIPPED,
                reason=reason,
                steps=[],
                result={},
                error="",
                started=time.perf_counter(),
                template_version=0,
            )
    return run

"""Resuming many due runs at once when what is left of their chain is plain grants.

Most journeys end a wait with a grant of a benefit that has no stock, budget, per-customer
limit or coupon code: nothing a grant can be refused for. For such runs the sweep does not
need a savepoint and five statements per run; it writes the batch set-based in the batch's
transaction, after the claim: the participations in one upsert (locked in key order when the
chain asks for the lock), the grants in one INSERT after one lookup of those already issued,
and the runs in one `UPDATE ... FROM unnest(...)` that appends their trace and builds their
result and outcome in PostgreSQL (no run's JSON passes through Python). The outcome, result
and trace of each run are those `resume_waiting` would have written; exactly-once is the
claim's, as for any resume. Every other run (a step with a condition, a limit, a wait, a
notification) goes through `resume_waiting`, one by one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, LiteralString, cast

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Field, Model, Q
from django.utils import timezone
from psycopg import sql

from activities.models import ChainRun, Grant, GrantState, Participation, RunOutcome
from core.metrics import record_grant, record_run

from .cache import ActivityConfig, BenefitConfig, activity_config
from .journeys import CompiledJourney, compiled_journey

GRANT_PROCESSOR = "grant_benefit"


@dataclass(frozen=True)
class PlainGrant:
    """A remaining step that grants a benefit nothing can refuse."""

    index: int
    benefit: BenefitConfig
    quantity: int


@dataclass(frozen=True)
class DueRun:
    """One claimed row of the batch, as much of it as a set-based resume reads."""

    run_id: int
    activity_id: int
    customer_id: int
    journey: CompiledJourney
    step: int
    outcome: str


def _plain_grant(step: Any, config: ActivityConfig) -> PlainGrant | None:
    if step.processor.key != GRANT_PROCESSOR or step.when is not None:
        return None
    benefit = config.benefits.get(step.processor.config["benefit"])
    if (
        benefit is None
        or benefit.per_customer_limit is not None
        or benefit.limited_stock
        or benefit.coupon is not None
        or (config.has_budget and benefit.value)
    ):
        return None
    return PlainGrant(
        index=step.index, benefit=benefit, quantity=step.processor.config.get("quantity", 1)
    )


@lru_cache(maxsize=1024)
def plain_tail(
    *, journey_id: int, step: int, activity_id: int, config_version: int
) -> tuple[PlainGrant, ...] | None:
    """The steps after the wait at `step` as plain grants, or None when any is something else.
    A benefit that is not stackable appears at most once: a second grant of it in the same run
    would hand back the first, which the set-based write does not model."""
    journey = compiled_journey(journey_id)
    config = activity_config(activity_id, config_version)
    tail: list[PlainGrant] = []
    for remaining in journey.steps[step + 1 :]:
        grant = _plain_grant(remaining, config)
        if grant is None:
            return None
        if not grant.benefit.stackable and any(g.benefit.id == grant.benefit.id for g in tail):
            return None
        tail.append(grant)
    return tuple(tail)


def _key(run_id: int, grant: PlainGrant) -> str:
    # The key grant_benefit gives the same step (run and step index).
    return f"run:{run_id}:step:{grant.index}"


def _sql_type(field: Field) -> sql.SQL:
    # The column type from the model's own DDL, never from input.
    db_type = field.db_type(connection)
    assert db_type is not None
    return sql.SQL(cast(LiteralString, db_type))


def _insert_many(
    model: type[Model], rows: dict[str, list[Any]], *, conflict: sql.Composable
) -> None:
    """`INSERT ... SELECT ... FROM unnest(...)`: one row per position of the lists in `rows`
    (by attname); every other column gets what a new instance would (its default, now for
    auto_now fields). No save() and no signals run: a new Participation has neither, and
    Grant's save() (django-fsm's concurrency check) only guards an existing row's state."""
    now = timezone.now()
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    given = [f for f in fields if f.attname in rows]
    others = [f for f in fields if f.attname not in rows]
    statement = sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {values} FROM unnest({arrays}) AS u({names})"
        " {conflict}"
    ).format(
        table=sql.Identifier(model._meta.db_table),
        columns=sql.SQL(", ").join(sql.Identifier(f.column) for f in given + others),
        values=sql.SQL(", ").join(
            [sql.SQL("u.{}").format(sql.Identifier(f.column)) for f in given]
            + [sql.SQL("%s::{}").format(_sql_type(f)) for f in others]
        ),
        arrays=sql.SQL(", ").join(sql.SQL("%s::{}[]").format(_sql_type(f)) for f in given),
        names=sql.SQL(", ").join(sql.Identifier(f.column) for f in given),
        conflict=conflict,
    )

    def new_value(field: Field) -> Any:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            return now
        return field.get_db_prep_save(field.get_default(), connection)

    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(None),
            [new_value(f) for f in others] + [rows[f.attname] for f in given],
        )


def _upsert_participations(rows: list[DueRun]) -> None:
    pairs = {(r.activity_id, r.customer_id): r.journey.requires_lock for r in rows}
    participation = {f.name: sql.Identifier(f.column) for f in Participation._meta.fields}
    for lock in (True, False):
        # Key order: two sweeps locking participations never wait on each other crosswise.
        chosen = sorted(pair for pair, locks in pairs.items() if locks is lock)
        if not chosen:
            continue
        # ON CONFLICT DO UPDATE locks each row, as insert_or_lock does for one run.
        conflict = sql.SQL(
            "ON CONFLICT ({activity}, {customer}) DO UPDATE SET {activity} = EXCLUDED.{activity}"
            if lock
            else "ON CONFLICT ({activity}, {customer}) DO NOTHING"
        ).format(activity=participation["activity"], customer=participation["customer"])
        _insert_many(
            Participation,
            {"activity_id": [a for a, _ in chosen], "customer_id": [c for _, c in chosen]},
            conflict=conflict,
        )


def _issued(rows: list[DueRun], tails: dict[int, tuple[PlainGrant, ...]]) -> dict[Any, Grant]:
    """Grants the batch's steps already have: by idempotency key, and for a benefit that is
    not stackable, an unused one the customer holds (keyed (benefit, customer))."""
    keys = [_key(r.run_id, g) for r in rows for g in tails[r.run_id]]
    held = Q()
    for benefit_id in {
        g.benefit.id for tail in tails.values() for g in tail if not g.benefit.stackable
    }:
        held |= Q(
            benefit_id=benefit_id,
            customer_id__in={r.customer_id for r in rows},
            state=GrantState.ISSUED,
        )
    found: dict[Any, Grant] = {}
    for grant in Grant.objects.filter(Q(idempotency_key__in=keys) | held).only(
        "pk", "idempotency_key", "benefit_id", "customer_id", "quantity", "state"
    ):
        found[grant.idempotency_key] = grant
        if grant.state == GrantState.ISSUED:
            found.setdefault((grant.benefit_id, grant.customer_id), grant)
    return found


def _grant_plainly(
    rows: list[DueRun], tails: dict[int, tuple[PlainGrant, ...]]
) -> dict[int, tuple[tuple[str, str, int], ...]]:
    """Issue the batch's grants in one INSERT; per run, (benefit code, kind, quantity) of each
    grant its steps got, in step order."""
    found = _issued(rows, tails)
    new: dict[str, list[Any]] = {
        name: []
        for name in ("benefit_id", "activity_id", "customer_id", "run_id", "idempotency_key",
                     "quantity", "remaining", "value")
    }  # fmt: skip
    granted: dict[int, tuple[tuple[str, str, int], ...]] = {}
    for row in rows:
        entries = []
        for step in tails[row.run_id]:
            benefit = step.benefit
            grant = found.get(_key(row.run_id, step))
            if grant is None and not benefit.stackable:
                grant = found.get((benefit.id, row.customer_id))
            if grant is None:
                key = _key(row.run_id, step)
                for name, value in (
                    ("benefit_id", benefit.id),
                    ("activity_id", row.activity_id),
                    ("customer_id", row.customer_id),
                    ("run_id", row.run_id),
                    ("idempotency_key", key),
                    ("quantity", step.quantity),
                    ("remaining", step.quantity),
                    ("value", benefit.value * step.quantity if benefit.value is not None else None),
                ):
                    new[name].append(value)
                if not benefit.stackable:
                    found[(benefit.id, row.customer_id)] = Grant(quantity=step.quantity)
                record_grant(kind=benefit.kind, quantity=step.quantity)
                quantity = step.quantity
            else:
                quantity = grant.quantity
            entries.append((benefit.code, benefit.kind, quantity))
        granted[row.run_id] = tuple(entries)
    if new["run_id"]:
        _insert_many(Grant, new, conflict=sql.SQL(""))
    return granted


def _dumped(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder)


def _finish_runs(
    *, tails: list[str], granted: list[str], run_ids: list[int], duration_ms: float
) -> None:
    """Finish many resumed runs in one `UPDATE ... FROM unnest(...)`, in the database: each
    run's trace gets `tails[i]` (JSON entries) appended, its result is `{"granted": ...}` with
    what it granted before it waited followed by `granted[i]`, and its outcome is `granted`
    when that list has anything, else `completed`."""
    runs = {f.name: sql.Identifier(f.column) for f in ChainRun._meta.concrete_fields}
    granted_so_far = sql.SQL(
        "(CASE WHEN jsonb_typeof({result} -> 'granted') = 'array' THEN {result} -> 'granted'"
        " ELSE '[]'::jsonb END || u.granted::jsonb)"
    ).format(result=runs["result"])
    statement = sql.SQL(
        "UPDATE {table} SET"
        " {outcome} = CASE WHEN jsonb_array_length({so_far}) > 0 THEN %s ELSE %s END,"
        " {reason} = '', {error} = '',"
        " {steps} = (CASE WHEN jsonb_typeof({steps}) = 'array' THEN {steps} ELSE '[]'::jsonb END"
        " || u.tail::jsonb),"
        " {result} = jsonb_build_object('granted', {so_far}),"
        " {finished} = %s, {duration} = %s"
        " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS u(id, tail, granted)"
        " WHERE {table}.{pk} = u.id RETURNING {table}.{outcome}"
    ).format(
        table=sql.Identifier(ChainRun._meta.db_table),
        so_far=granted_so_far,
        outcome=runs["outcome"],
        reason=runs["reason"],
        error=runs["error"],
        steps=runs["steps"],
        result=runs["result"],
        finished=runs["finished_at"],
        duration=runs["duration_ms"],
        pk=runs["id"],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(None),
            [
                RunOutcome.GRANTED.value,
                RunOutcome.COMPLETED.value,
                timezone.now(),
                duration_ms,
                run_ids,
                tails,
                granted,
            ],
        )
        outcomes = [row[0] for row in cursor.fetchall()]
    for outcome in outcomes:
        record_run(outcome=outcome, seconds=duration_ms / 1000)


def resume_plainly(rows: list[DueRun], *, tails: dict[int, tuple[PlainGrant, ...]]) -> None:
    """Resume claimed runs whose remaining steps are `tails[run_id]`, set-based, writing the
    outcome, result and trace `resume_waiting` would. One run per (activity, customer) in
    `rows`: two runs sharing a participation resume one by one."""
    started = time.perf_counter()
    _upsert_participations(rows)
    granted = _grant_plainly(rows, tails)
    # The batch's time, shared out: the trace keeps its shape, one entry per step.
    share = round((time.perf_counter() - started) * 1000 / len(rows), 3)
    # Runs of one shape append the same entries: each is written out once.
    trace_of: dict[tuple[int, int, str], str] = {}
    granted_of: dict[tuple[tuple[str, str, int], ...], str] = {}
    trace_tails: list[str] = []
    granted_entries: list[str] = []
    for row in rows:
        shape = (row.journey.id, row.step, row.outcome)
        if shape not in trace_of:
            wait = row.journey.steps[row.step].processor.key
            trace_of[shape] = _dumped(
                [{"processor": wait, "outcome": "resumed", "reason": row.outcome, "ms": 0}]
                + [{"processor": GRANT_PROCESSOR, "outcome": "passed", "ms": share}]
                * len(tails[row.run_id])
            )
        trace_tails.append(trace_of[shape])
        got = granted[row.run_id]
        if got not in granted_of:
            granted_of[got] = _dumped(
                [{"benefit": code, "kind": kind, "quantity": qty} for code, kind, qty in got]
            )
        granted_entries.append(granted_of[got])
    _finish_runs(
        tails=trace_tails,
        granted=granted_entries,
        run_ids=[row.run_id for row in rows],
        duration_ms=share,
    )

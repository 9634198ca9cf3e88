"""The set-based resume of runs whose remaining steps are plain grants writes what the
one-by-one resume writes, and hands a benefit that is not stackable back once per customer;
sweeps beyond the number allowed at once leave the rows to the others."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from activities.models import ChainRun, Grant, Participation, RunOutcome, WaitingRun, WaitState
from activities.services import journeys
from activities.services.events import process_event
from tests.factories import BenefitFactory
from tests.journeys.builders import (
    build_journey,
    build_points_journey,
    fire,
    make_waiting_runs,
)

T0 = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)
THEN = T0 + dt.timedelta(minutes=1)


def _journey(code: str, channel: str, *, kind: str, limit: int | None) -> None:
    activity = build_journey(
        code=code,
        channel=channel,
        steps=[
            {"processor": "wait_for", "config": {"duration": "1m"}},
            {"processor": "grant_benefit", "config": {"benefit": "gift", "quantity": 2}},
        ],
    )
    BenefitFactory(activity=activity, code="gift", kind=kind, per_customer_limit=limit)


def _start(channel: str, customer: str, key: str) -> ChainRun:
    event = fire(channel, customer, {}, key)
    process_event(event_id=event.pk)
    return ChainRun.objects.get(event=event)


def _written(run: ChainRun) -> tuple[Any, ...]:
    run.refresh_from_db()
    trace = [{k: v for k, v in entry.items() if k != "ms"} for entry in run.steps]
    return run.outcome, run.reason, run.error, run.result, trace


@pytest.mark.django_db
def test_a_plain_grant_resumed_set_based_is_written_as_one_by_one(time_machine):
    time_machine.move_to(T0, tick=False)
    # The limit makes the second journey's grant refusable, so it resumes one by one.
    _journey("plain", "signed.up", kind="points", limit=None)
    _journey("limited", "joined.club", kind="points", limit=10)
    plain = [_start("signed.up", f"p-{i}", f"p-{i}") for i in range(3)]
    limited = _start("joined.club", "l-0", "l-0")
    time_machine.move_to(THEN, tick=False)

    assert journeys.resume_due_batch() == 4

    expected = (
        RunOutcome.GRANTED,
        "",
        "",
        {"granted": [{"benefit": "gift", "kind": "points", "quantity": 2}]},
        [
            {"processor": "wait_for", "outcome": "passed"},
            {"processor": "wait_for", "outcome": "resumed", "reason": "elapsed"},
            {"processor": "grant_benefit", "outcome": "passed"},
        ],
    )
    assert [_written(run) for run in [*plain, limited]] == [expected] * 4
    assert sorted(Grant.objects.values_list("idempotency_key", "quantity", "remaining")) == sorted(
        (f"run:{run.pk}:step:1", 2, 2) for run in [*plain, limited]
    )
    assert Participation.objects.count() == 4
    assert set(WaitingRun.objects.values_list("state", "reason")) == {
        (WaitState.RESUMED, "elapsed")
    }
    assert journeys.resume_due_batch() == 0


@pytest.mark.django_db
def test_two_runs_of_one_customer_in_a_batch_share_the_prize_they_may_hold_once(time_machine):
    time_machine.move_to(T0, tick=False)
    _journey("prize", "signed.up", kind="prize", limit=None)
    first = _start("signed.up", "ann", "ann-1")
    second = _start("signed.up", "ann", "ann-2")
    time_machine.move_to(THEN, tick=False)

    assert journeys.resume_due_batch() == 2

    prize = {"granted": [{"benefit": "gift", "kind": "prize", "quantity": 2}]}
    assert [_written(run)[:4] for run in (first, second)] == [
        (RunOutcome.GRANTED, "", "", prize)
    ] * 2
    assert list(Grant.objects.values_list("idempotency_key", flat=True)) == [
        f"run:{first.pk}:step:1"
    ]


@pytest.mark.django_db(transaction=True)
def test_a_sweep_beyond_the_sweepers_allowed_returns_without_resuming():
    activity = build_points_journey(code="capped")
    make_waiting_runs(
        activity=activity,
        channel="signed.up",
        count=3,
        due_at=timezone.now() - dt.timedelta(seconds=1),
    )
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname=db["NAME"],
        password=db["PASSWORD"] or None,
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s, 0)", [journeys.SWEEP_LOCK_CLASS])
        assert journeys.resume_due(limit=10, seconds=30, sweepers=1) == 0
        assert WaitingRun.objects.filter(state=WaitState.WAITING).count() == 3
        assert journeys.resume_due(limit=10, seconds=30, sweepers=2) == 3
    assert Grant.objects.filter(activity=activity).count() == 3

"""Dry-run: run an activity's chain for one customer and payload, show everything, keep nothing.

The real runner does the work (`activities.engine.runner.run_activity`), so a dry-run cannot
drift from production behaviour. Everything happens inside one transaction that is rolled back:
the event, the run, counters, stock, budget, grants and emitted events all vanish, and work
scheduled with `transaction.on_commit` (tasks, messages, webhooks) is discarded with it.

Differences from a real run, on purpose: the activity may be a draft and its window need not be
open (operators check a configuration before they schedule it), and a customer id that does not
exist yet is created for the run only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from activities.engine import cache
from activities.engine.runner import run_activity
from activities.models import Activity, Channel, Event, Grant
from activities.selectors import RunnableActivity
from segments.models import Customer
from segments.services import ensure_customer

# Steps whose effect leaves Gambit after the run commits: what the run "would send".
SENDING_PROCESSORS = ("notify", "call_webhook", "emit_event")


@dataclass(frozen=True)
class DryRunOutcome:
    outcome: str
    reason: str
    error: str
    steps: list[dict[str, Any]]
    result: dict[str, Any]
    grants: list[dict[str, Any]] = field(default_factory=list)
    emitted: list[dict[str, Any]] = field(default_factory=list)
    sends: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float | None = None


def dry_run(
    *,
    activity: Activity,
    channel: Channel,
    customer_external_id: str,
    payload: dict[str, Any],
    prepare: Callable[[Customer], None] | None = None,
) -> DryRunOutcome:
    """Run the activity's chain bound to `channel` as if the event had arrived, then roll back.

    `prepare(customer)` writes a starting state first ("already a 6-day streak"), inside the
    same rolled-back transaction, so the interesting branch runs without waiting days."""
    # Compiled configuration is cached per version stamp for running activities; a draft being
    # edited and reverted can reuse a stamp in this process, so compile afresh. Workers (which
    # only ever compile running activities) keep their caches.
    cache.compiled_chain.cache_clear()
    cache.activity_config.cache_clear()
    template_version = activity.template.version
    with transaction.atomic():
        customer = ensure_customer(external_id=customer_external_id)
        if prepare is not None:
            prepare(customer)
        event = Event.objects.create(
            idempotency_key=f"dry-run:{uuid.uuid4()}",
            request_hash="",
            channel=channel,
            customer=customer,
            payload=payload,
            activity=activity,
        )
        run = run_activity(
            event=event,
            activity=RunnableActivity(
                id=activity.pk,
                template_id=activity.template_id,
                template_version=template_version,
                config_version=activity.config_version,
                starts_at=None,
                ends_at=None,
            ),
        )
        grants = [
            {
                "benefit": grant.benefit.code,
                "kind": grant.benefit.get_kind_display(),
                "quantity": grant.quantity,
                "value": grant.value,
            }
            for grant in Grant.objects.filter(run=run).select_related("benefit").order_by("pk")
        ]
        emitted = [
            {"channel": code, "payload": emitted_payload}
            for code, emitted_payload in Event.objects.filter(parent_run=run)
            .order_by("created_at")
            .values_list("channel__code", "payload")
        ]
        sends = _sends(activity=activity, channel=channel, trace=run.steps)
        outcome = DryRunOutcome(
            outcome=run.outcome,
            reason=run.reason,
            error=run.error,
            steps=run.steps,
            result=run.result,
            grants=grants,
            emitted=emitted,
            sends=sends,
            duration_ms=run.duration_ms,
        )
        transaction.set_rollback(True)
    return outcome


def _sends(
    *, activity: Activity, channel: Channel, trace: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Steps of the trace that passed and would send something after commit, with their config."""
    configs = list(
        activity.template.chains.get(channel=channel)
        .steps.order_by("position", "id")
        .values_list("processor", "config")
    )
    sends = []
    # Entries with a `variant` belong to a split's branch, not to the chain's own steps.
    chain_trace = [entry for entry in trace if "variant" not in entry]
    for (processor, config), entry in zip(configs, chain_trace, strict=False):
        if processor in SENDING_PROCESSORS and entry.get("outcome") == "passed":
            sends.append({"processor": processor, "config": config})
    return sends

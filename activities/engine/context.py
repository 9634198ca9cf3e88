"""What a run reads and writes. Every key is resolved lazily, in one place: `RunContext.get`.

Keys: `customer.<field>` / `customer.attributes.<key>`, `event.<payload path>`,
`participation.<benefit code>` (unused quantity held in this activity) or
`participation.<context key>`, `activities.<code>.<benefit code or key>` (read only),
`vars.<key>` (set by set_context in this run), `wait.outcome` / `wait.event.<payload path>`
(after a wait step: how it ended, and the awaited event), `subject.<name>` (whom a step
counted for other than the acting customer: a team, a help request, a candidate; its values,
else its counter `<name>`), `now`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from activities.selectors import benefit_balances, other_activity_value
from activities.selectors_subjects import subject_count
from core.rules import MISSING, dig

if TYPE_CHECKING:
    from activities.models import ChainRun, Event, Grant, Participation
    from segments.models import Customer

    from .cache import ActivityConfig
    from .waits import Suspension


@dataclass
class Subject:
    """Whom a step counted for, other than the acting customer: `kind` (team, request,
    candidate, customer), `id` (its code or external id) and what the step knows of it."""

    kind: str
    id: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    event: Event
    activity: ActivityConfig
    customer: Customer
    participation: Participation
    run: ChainRun
    now: dt.datetime
    step_index: int = 0
    vars: dict[str, Any] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    # Why a run that got this far granted nothing (for example "out_of_stock").
    reason: str = ""
    # Callbacks to run once the run's transaction commits (tasks, messages, webhooks).
    effects: list[Callable[[], object]] = field(default_factory=list)
    # Writes that stand even when the run is rejected or fails and its own writes roll back:
    # an experiment exposure (the customer saw the variant, whatever the variant then did).
    durable: list[Callable[[], None]] = field(default_factory=list)
    # How the last wait step ended ({"outcome", "event"}), and the wait a step just asked for.
    wait: dict[str, Any] = field(default_factory=dict)
    suspension: Suspension | None = None
    subject: Subject | None = None
    _balances: dict[str, int] | None = None

    def get(self, path: str) -> Any:
        root, _, rest = path.partition(".")
        parts = rest.split(".") if rest else []
        if root == "event":
            return dig(self.event.payload, parts)
        if root == "customer":
            return self._customer_value(parts)
        if root == "participation":
            return self._participation_value(parts)
        if root == "vars":
            return dig(self.vars, parts)
        if root == "wait":
            return dig(self.wait, parts)
        if root == "subject":
            return self._subject_value(parts)
        if root == "activities" and len(parts) >= 2:
            return other_activity_value(
                activity_code=parts[0], customer_id=self.customer.pk, path=parts[1:]
            )
        if root == "now" and not parts:
            return self.now
        return MISSING

    def _customer_value(self, parts: list[str]) -> Any:
        if not parts:
            return MISSING
        if parts[0] == "attributes":
            return dig(self.customer.attributes or {}, parts[1:])
        value = getattr(self.customer, parts[0], MISSING)
        return value if len(parts) == 1 else MISSING

    def _participation_value(self, parts: list[str]) -> Any:
        if not parts:
            return MISSING
        if parts[0] in self.activity.benefits and len(parts) == 1:
            return self.balances().get(parts[0], 0)
        return dig(self.participation.data or {}, parts)

    def _subject_value(self, parts: list[str]) -> Any:
        if self.subject is None or not parts:
            return MISSING
        if parts == ["kind"]:
            return self.subject.kind
        if parts == ["id"]:
            return self.subject.id
        if parts[0] in self.subject.values:
            return dig(self.subject.values, parts)
        if len(parts) == 1:
            return subject_count(
                activity_id=self.activity.id,
                kind=self.subject.kind,
                subject=self.subject.id,
                key=parts[0],
            )
        return MISSING

    def balances(self) -> dict[str, int]:
        """Unused quantity per benefit code that the customer holds in this activity."""
        if self._balances is None:
            self._balances = benefit_balances(
                activity_id=self.activity.id, customer_id=self.customer.pk
            )
        return self._balances

    def holdings_changed(self) -> None:
        self._balances = None

    def on_commit(self, effect: Callable[[], object]) -> None:
        self.effects.append(effect)

    def keep(self, write: Callable[[], None]) -> None:
        """Run `write` again after a rejected or failed run has rolled back (idempotent)."""
        self.durable.append(write)

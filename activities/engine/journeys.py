"""The engine's side of journeys: the version a waiting run keeps, and the row it waits in.

A run that waits names a JourneyVersion: the chain's steps as the run's template version had
them. It is written the first time a run of that version waits and compiled once per process,
so a run resumes on the steps it started with even after the template was edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from activities.models import Channel, JourneyVersion, WaitingRun, WaitState

from .cache import CompiledChain, CompiledStep, compile_steps

if TYPE_CHECKING:
    from .context import RunContext
    from .waits import Suspension


@dataclass(frozen=True)
class CompiledJourney:
    id: int
    template_id: int
    channel_id: int
    requires_lock: bool
    steps: tuple[CompiledStep, ...]
    exit_channels: tuple[int, ...]

    # Steps take part by what they define (no import of the processors: they import the
    # services, which import this): `exits_on` (journey_rules), `accepts` (wait_for_event).

    def exits_on(
        self, *, channel_code: str, payload: dict[str, Any], origin: dict[str, Any]
    ) -> bool:
        return any(
            step.processor.exits_on(channel_code=channel_code, payload=payload, origin=origin)
            for step in self.steps
            if hasattr(step.processor, "exits_on")
        )

    def awaits(self, *, step: int, payload: dict[str, Any], match: dict[str, Any]) -> bool:
        processor = self.steps[step].processor
        return hasattr(processor, "accepts") and processor.accepts(payload=payload, match=match)


def channel_id(code: str) -> int:
    """The channel's id, created when missing (so the storefront can send it)."""
    return Channel.objects.get_or_create(code=code)[0].pk


def journey_version_id(*, chain: CompiledChain, template_version: int) -> int:
    """The JourneyVersion of the chain at this version, written by the first run that waits.
    Looked up each time: an id cached in the process could name a row a rollback undid."""
    exits = sorted(
        {
            channel_id(code)
            for step in chain.steps
            for code in getattr(step.processor, "exit_channels", frozenset())
        }
    )
    version, _ = JourneyVersion.objects.get_or_create(
        template_id=chain.template_id,
        channel_id=chain.channel_id,
        template_version=template_version,
        defaults={
            "requires_lock": chain.requires_lock,
            "steps": list(chain.definition),
            "exit_channels": exits,
        },
    )
    return version.pk


@lru_cache(maxsize=256)
def compiled_journey(version_id: int) -> CompiledJourney:
    version = JourneyVersion.objects.get(pk=version_id)
    return CompiledJourney(
        id=version.pk,
        template_id=version.template_id,
        channel_id=version.channel_id,
        requires_lock=version.requires_lock,
        steps=compile_steps(version.steps),
        exit_channels=tuple(version.exit_channels),
    )


def hold(
    *, ctx: RunContext, suspension: Suspension, journey_id: int, exits: tuple[int, ...]
) -> None:
    """Write (or rewrite, for a run that waits again) the run's WaitingRun row."""
    awaited = channel_id(suspension.channel_code) if suspension.channel_code else None
    watching = sorted({*exits, *([awaited] if awaited else [])})
    WaitingRun.objects.update_or_create(
        run_id=ctx.run.pk,
        defaults={
            "activity_id": ctx.activity.id,
            "customer_id": ctx.customer.pk,
            "journey_id": journey_id,
            "step": suspension.step,
            "due_at": suspension.due_at,
            "channel_id": awaited,
            "watching": watching,
            "match": suspension.match,
            "vars": ctx.vars,
            "state": WaitState.WAITING,
            "reason": "",
            "arrived_event_id": None,
            "finished_at": None,
        },
    )


def journey_for(*, chain: CompiledChain, template_version: int) -> CompiledJourney:
    return compiled_journey(journey_version_id(chain=chain, template_version=template_version))


def suspend(*, ctx: RunContext, journey: CompiledJourney) -> dict[str, Any]:
    """The run waits: its row is written; returns the result the storefront sees meanwhile."""
    assert ctx.suspension is not None
    hold(ctx=ctx, suspension=ctx.suspension, journey_id=journey.id, exits=journey.exit_channels)
    return waiting_result(ctx.suspension)


def waiting_result(suspension: Suspension) -> dict[str, Any]:
    return {
        "resumes_at": suspension.due_at.isoformat(),
        "awaiting": suspension.channel_code,
    }

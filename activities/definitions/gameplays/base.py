"""The gameplay contract and registry.

A gameplay is a parameterised strategy template: a JSON Schema of parameters (labels, help,
defaults and units in the operator's language) that the admin renders as one form, a
`validate` for what a schema cannot say ("a milestone past the streak length"), and a `build`
that turns parameters into the chains of an ordinary activity definition document. Everything
after `build` is the definition importer's job, so a gameplay can configure nothing the
importer would refuse, and an expert can still open and edit the chains it made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.functional import Promise

from activities.engine.errors import ConfigError

if TYPE_CHECKING:
    import datetime as dt

    from activities.models import Activity
    from segments.models import Customer

Parameters = dict[str, Any]
# The kinds of parameter the admin form renders specially (`x-kind` in the schema).
BENEFIT = "benefit"
CHANNEL = "channel"
CONDITION = "condition"


def benefit_param(
    *, title: str | Promise, description: str | Promise = "", optional: bool = False
) -> dict[str, Any]:
    """A parameter naming one of the activity's own benefits (picked, never typed)."""
    return {
        "type": ["string", "null"] if optional else "string",
        "x-kind": BENEFIT,
        "title": title,
        "description": description,
        "default": None if optional else "",
    }


@dataclass(frozen=True)
class DryRunState:
    """A starting state the dry-run page offers: its fields (a parameters-style schema) and how
    to write it for one customer inside the dry-run's rolled-back transaction."""

    schema: dict[str, Any]
    apply: Callable[..., None]  # (*, activity: Activity, customer: Customer, state, now) -> None


@dataclass(frozen=True)
class Gameplay:
    code: str
    name: str | Promise
    description: str | Promise
    # What the storefront shows, in a sentence, so the operator recognises the gameplay.
    preview: str | Promise
    parameters: dict[str, Any]
    build: Callable[[Parameters], list[dict[str, Any]]]
    validate: Callable[[Parameters], list[ConfigError]] = lambda params: []
    # The benefits a new activity of this gameplay starts with (the operator edits them); names
    # may be lazy translations, read them through `initial_benefits()`.
    default_benefits: list[dict[str, Any]] = field(default_factory=list)
    # This customer's section(s) of the storefront's progress read.
    progress: Callable[..., dict[str, Any]] | None = None  # (*, activity, customer) -> dict
    dry_run_state: DryRunState | None = None

    def defaults(self) -> Parameters:
        return {
            name: spec["default"]
            for name, spec in self.parameters["properties"].items()
            if "default" in spec
        }

    def initial_benefits(self) -> list[dict[str, Any]]:
        """The default benefits as document rows, names in the active language."""
        return [
            {key: str(value) if isinstance(value, Promise) else value for key, value in row.items()}
            for row in self.default_benefits
        ]

    def section(self, *, activity: Activity, customer: Customer) -> dict[str, Any]:
        return self.progress(activity=activity, customer=customer) if self.progress else {}

    def start_state(
        self, *, activity: Activity, customer: Customer, state: dict[str, Any], now: dt.datetime
    ) -> None:
        if self.dry_run_state is not None and state:
            self.dry_run_state.apply(activity=activity, customer=customer, state=state, now=now)


_registry: dict[str, Gameplay] = {}


def register(gameplay: Gameplay) -> Gameplay:
    if gameplay.code in _registry and _registry[gameplay.code] is not gameplay:
        raise ValueError(f"Gameplay {gameplay.code!r} is registered twice.")
    _registry[gameplay.code] = gameplay
    return gameplay


def get(code: str) -> Gameplay | None:
    return _registry.get(code)


def all_gameplays() -> list[Gameplay]:
    return sorted(_registry.values(), key=lambda gameplay: gameplay.code)

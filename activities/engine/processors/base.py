"""The processor contract. A processor is configuration-driven: its schema is enforced when a
step is saved or imported, and one instance is built per compiled chain version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.utils.functional import Promise
from jsonschema import Draft202012Validator

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError
from core.schema_messages import schema_error

if TYPE_CHECKING:
    from activities.engine.cache import CompiledStep


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class Branch:
    """Steps a processor hands the runner to run next, in the same run (a split's variant).

    `label` names the branch in the trace of each of its steps; `number` tells the branches of
    one step apart, so their steps get indexes (and idempotency keys) of their own."""

    label: str
    number: int
    steps: tuple[CompiledStep, ...]


class Processor:
    key: ClassVar[str]
    label: ClassVar[str | Promise]
    description: ClassVar[str | Promise] = ""
    config_schema: ClassVar[dict[str, Any]] = {"type": "object", "additionalProperties": False}
    # The reason stored when `validate` says no without giving one.
    default_reason: ClassVar[str] = "rejected"

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    # --- configuration ---------------------------------------------------------------------

    @classmethod
    def check_config(cls, config: Any) -> list[ConfigError]:
        """Schema first, then the processor's own checks; every problem, with its path."""
        validator = Draft202012Validator(cls.config_schema)
        errors = []
        for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
            path, message = schema_error(error)
            errors.append(ConfigError(path=_path(path), message=message))
        return errors or cls.clean_config(config)

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        """Checks the schema cannot express (rule fields, references). Config is schema-valid."""
        return []

    @classmethod
    def benefit_codes(cls, config: dict[str, Any]) -> set[str]:
        """Benefits the step names; an activity on this template must define them."""
        return set()

    @classmethod
    def emitted_channels(cls, config: dict[str, Any]) -> set[str]:
        """Channels the step fires into; used to refuse cycles at save time."""
        return set()

    @classmethod
    def credited_channels(cls, config: dict[str, Any]) -> set[str]:
        """Channels the step fires into for customers other than the acting one; the
        storefront may not fire those itself."""
        return set()

    @classmethod
    def can_emit(cls) -> bool:
        """Whether steps of this processor may fire events (it says which, by config)."""
        return cls.emitted_channels.__func__ is not Processor.emitted_channels.__func__  # type: ignore[attr-defined]

    # --- running -----------------------------------------------------------------------------

    def validate(self, ctx: RunContext) -> bool:
        """Gate: False ends the run as `rejected`, with `reason(ctx)` as its reason."""
        return True

    def process(self, ctx: RunContext) -> None:
        """Do the step's work; may raise Rejected or StepFailed."""

    def reason(self, ctx: RunContext) -> str:
        return self.default_reason

    def branch(self, ctx: RunContext) -> Branch | None:
        """Called after the step passed: steps to run next, before the chain goes on."""
        return None

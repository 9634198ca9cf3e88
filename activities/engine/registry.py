"""The processor registry: every processor a chain step may name, by key."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .processors.base import Processor

_registry: dict[str, type[Processor]] = {}


def register(cls: type[Processor]) -> type[Processor]:
    if cls.key in _registry and _registry[cls.key] is not cls:
        raise ValueError(f"Processor key {cls.key!r} is registered twice.")
    _registry[cls.key] = cls
    return cls


def get(key: str) -> type[Processor] | None:
    return _registry.get(key)


def all_processors() -> list[type[Processor]]:
    return sorted(_registry.values(), key=lambda cls: cls.key)


def choices() -> list[tuple[str, str]]:
    return [(cls.key, str(cls.label)) for cls in all_processors()]

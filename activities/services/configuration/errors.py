"""How a configuration write refuses: every problem at once, each with its path and code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from activities.engine.errors import ConfigError, error_details
from core.errors import InvalidConfiguration


class TemplateFrozen(InvalidConfiguration):
    code = "template_frozen"


def refuse(message: str, errors: list[ConfigError]) -> InvalidConfiguration:
    return InvalidConfiguration(message, details=error_details(errors))


def model_errors(
    instance: Any, *, exclude: Iterable[str] = (), unique: bool = True
) -> list[ConfigError]:
    """The model's own validators (lengths, digits, code patterns, constraints)."""
    try:
        instance.full_clean(
            exclude=list(exclude), validate_unique=unique, validate_constraints=unique
        )
    except ValidationError as error:
        return [
            ConfigError("" if field == "__all__" else field, text, message.code or "invalid")
            for field, messages in error.error_dict.items()
            for message in messages
            for text in message.messages
        ]
    return []

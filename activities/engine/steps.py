"""A step's shape: its processor is registered, its config fits that processor, its `when`
parses. Checked where a step is saved or imported, and for each step nested in a split."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from core.rules import RuleError

from . import registry
from .chain_rules import parse_chain_rule
from .errors import ConfigError, prefixed


def check_step_shape(*, processor: Any, config: Any, when: Any) -> list[ConfigError]:
    """Everything about a step that does not depend on the database: processor, config, when."""
    errors: list[ConfigError] = []
    processor_class = registry.get(processor) if isinstance(processor, str) else None
    if processor_class is None:
        errors.append(
            ConfigError(
                "processor",
                _("Unknown processor %(key)r; use one of %(keys)s.")
                % {
                    "key": processor,
                    "keys": ", ".join(cls.key for cls in registry.all_processors()),
                },
                "unknown_processor",
            )
        )
    else:
        errors.extend(prefixed(processor_class.check_config(config), "config"))
    if when is not None:
        try:
            parse_chain_rule(when, path="when")
        except RuleError as error:
            errors.append(ConfigError(error.path or "when", error.message, error.code))
    return errors

from typing import Any

from django.utils.translation import gettext as _gettext
from django.utils.translation import gettext_lazy as _

from activities.engine import assignment, registry
from activities.engine.cache import CompiledStep
from activities.engine.context import RunContext
from activities.engine.errors import ConfigError, prefixed
from activities.engine.registry import register
from activities.engine.steps import check_step_shape
from activities.models import ErrorPolicy
from activities.services.exposures import expose
from core.rules import compile_predicate, parse

from .base import Branch, Processor

NAME_PATTERN = "^[a-z0-9]+([_-][a-z0-9]+)*$"
MAX_VARIANTS = 10
MAX_VARIANT_STEPS = 20

_nested_step = {
    "type": "object",
    "description": "A step like a chain's: processor, config, when, on_error.",
    "properties": {
        "processor": {"type": "string"},
        "config": {"type": "object"},
        "when": {"type": ["object", "null"]},
        "on_error": {"enum": list(ErrorPolicy.values)},
    },
    "required": ["processor"],
    "additionalProperties": False,
}


@register
class Split(Processor):
    """Route the customer to one variant of an experiment and run that variant's steps.

    The variant is picked once per (activity, customer) by a hash of the experiment and the
    customer against the weights, and stored: the customer keeps it for good, and new weights
    only place customers seen for the first time. The variant's steps run in this run, right
    after the split; a variant with no steps is a control (holdout) group.
    """

    key = "split"
    label = _("A/B split")
    description = _(
        "Experiment `key`: each variant has a weight and its own steps (none for a control "
        "group). A customer always gets the variant they got first; later steps can read "
        "vars.variants.<key>."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "key": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": 50},
            "control": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 50},
            "variants": {
                "type": "array",
                "minItems": 2,
                "maxItems": MAX_VARIANTS,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 50},
                        "weight": {"type": "number", "minimum": 0},
                        "steps": {
                            "type": "array",
                            "maxItems": MAX_VARIANT_STEPS,
                            "items": _nested_step,
                        },
                    },
                    "required": ["name", "weight"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["key", "variants"],
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        errors: list[ConfigError] = []
        names = [variant["name"] for variant in config["variants"]]
        for index, name in enumerate(names):
            if name in names[:index]:
                errors.append(
                    ConfigError(
                        f"variants[{index}].name",
                        _gettext("Variant %(name)s is listed twice.") % {"name": name},
                        "duplicate_variant",
                    )
                )
        if sum(variant["weight"] for variant in config["variants"]) <= 0:
            errors.append(
                ConfigError(
                    "variants",
                    _gettext("At least one variant needs a weight above zero."),
                    "invalid_weights",
                )
            )
        if "control" in config and config["control"] not in names:
            errors.append(
                ConfigError(
                    "control",
                    _gettext("The control must be one of the variants: %(names)s.")
                    % {"names": ", ".join(names)},
                    "unknown_variant",
                )
            )
        for index, variant in enumerate(config["variants"]):
            for position, step in enumerate(variant.get("steps", [])):
                path = f"variants[{index}].steps[{position}]"
                if step["processor"] == cls.key:
                    errors.append(
                        ConfigError(
                            f"{path}.processor",
                            _gettext("A variant cannot split again; use another split step."),
                            "nested_split",
                        )
                    )
                    continue
                shape = check_step_shape(
                    processor=step["processor"],
                    config=step.get("config", {}),
                    when=step.get("when"),
                )
                errors.extend(prefixed(shape, path))
        return errors

    @classmethod
    def _nested(cls, config: dict[str, Any]) -> list[tuple[type[Processor], dict[str, Any]]]:
        out = []
        for variant in config["variants"]:
            for step in variant.get("steps", []):
                processor_class = registry.get(step["processor"])
                if processor_class is not None:
                    out.append((processor_class, step.get("config", {})))
        return out

    @classmethod
    def benefit_codes(cls, config: dict[str, Any]) -> set[str]:
        return {
            code
            for processor_class, step_config in cls._nested(config)
            for code in processor_class.benefit_codes(step_config)
        }

    @classmethod
    def emitted_channels(cls, config: dict[str, Any]) -> set[str]:
        return {
            channel
            for processor_class, step_config in cls._nested(config)
            for channel in processor_class.emitted_channels(step_config)
        }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.experiment_key = config["key"]
        self.names = [variant["name"] for variant in config["variants"]]
        self.ends = assignment.boundaries([variant["weight"] for variant in config["variants"]])
        self.branches = {
            variant["name"]: Branch(
                label=variant["name"],
                number=number,
                steps=tuple(
                    _compile(position, step)
                    for position, step in enumerate(variant.get("steps", []))
                ),
            )
            for number, variant in enumerate(config["variants"])
        }

    def process(self, ctx: RunContext) -> None:
        name = expose(ctx=ctx, key=self.experiment_key, names=self.names, ends=self.ends)
        ctx.vars.setdefault("variants", {})[self.experiment_key] = name

    def branch(self, ctx: RunContext) -> Branch:
        name = ctx.vars["variants"][self.experiment_key]
        # A variant since removed from the configuration keeps its customers, with no steps.
        return self.branches.get(name) or Branch(label=name, number=len(self.names), steps=())


def _compile(position: int, step: dict[str, Any]) -> CompiledStep:
    processor_class = registry.get(step["processor"])
    if processor_class is None:
        raise LookupError(f"Unknown processor {step['processor']!r} in a split variant.")
    return CompiledStep(
        index=position,
        processor=processor_class(step.get("config") or {}),
        when=compile_predicate(parse(step["when"])) if step.get("when") else None,
        abort_on_error=step.get("on_error", ErrorPolicy.ABORT) == ErrorPolicy.ABORT,
    )

"""The activity definition document's JSON Schema, generated from the code that enforces it.

The published file (docs/activity-definition.schema.json) is this schema with every
processor's own config schema attached to its steps; a test fails when the file drifts. The
importer validates the structure with the same schema, then checks each step with
`configuration.check_step`, which applies the very same processor schemas plus the checks a
schema cannot express (rule fields, emit loops, benefits that must exist).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from django.utils import translation
from jsonschema import Draft202012Validator

from activities.engine import registry
from activities.models import BenefitKind, ErrorPolicy
from activities.models.activity import ExhaustionPolicy
from activities.models.channel import channel_code_validator
from activities.models.template import code_validator

from .coupon_terms import coupon_schema

PUBLISHED_PATH = Path(__file__).resolve().parents[2] / "docs" / "activity-definition.schema.json"

# PositiveIntegerField's ceiling on PostgreSQL.
MAX_INT = 2_147_483_647

CODE = {"type": "string", "pattern": re.compile(code_validator.regex).pattern, "maxLength": 100}
CHANNEL = {
    "type": "string",
    "pattern": re.compile(channel_code_validator.regex).pattern,
    "maxLength": 100,
}
LOCAL_TIME = {
    "type": ["string", "null"],
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$",
    "description": "Wall time in the document's timezone, without an offset: "
    "2026-12-01T10:00:00 (null leaves a draft without a window).",
}


def _decimal(integer_digits: int) -> dict[str, Any]:
    # `pattern` applies to the text form only, `minimum` and `maximum` to the number form.
    return {
        "type": ["string", "number"],
        "pattern": rf"^\d{{1,{integer_digits}}}(\.\d{{1,2}})?$",
        "minimum": 0,
        "exclusiveMaximum": 10**integer_digits,
        "description": 'An amount with at most two decimals, best written as text: "5.00".',
    }


def _step(processor_configs: bool) -> dict[str, Any]:
    step: dict[str, Any] = {
        "type": "object",
        "properties": {
            "processor": (
                {"enum": [cls.key for cls in registry.all_processors()]}
                if processor_configs
                else {"type": "string"}
            ),
            "config": {"type": "object", "description": "The processor's configuration."},
            "when": {
                "type": ["object", "null"],
                "description": "A condition tree (all / any / not / {field, op, value}); the "
                "step is skipped when it is false.",
            },
            "on_error": {"enum": list(ErrorPolicy.values), "default": ErrorPolicy.ABORT.value},
        },
        "required": ["processor"],
        "additionalProperties": False,
    }
    if processor_configs:
        step["allOf"] = [_processor_rule(cls) for cls in registry.all_processors()]
    return step


def _processor_rule(cls: Any) -> dict[str, Any]:
    config = {"description": str(cls.description), **cls.config_schema}
    then: dict[str, Any] = {"properties": {"config": config}}
    # A step without `config` runs with {}; require it where {} is not a valid config.
    if not Draft202012Validator(cls.config_schema).is_valid({}):
        then["required"] = ["config"]
    return {
        "if": {"properties": {"processor": {"const": cls.key}}, "required": ["processor"]},
        "then": then,
    }


def document_schema(*, processor_configs: bool = True) -> dict[str, Any]:
    """The schema of an activity definition; without `processor_configs`, steps' configs are
    only required to be objects (the importer checks them itself, with better paths)."""
    with translation.override("en"):
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Gambit activity definition",
            "description": "An activity with its strategy template, chains, steps and benefits. "
            "Import with `manage.py import_activity FILE`; `manage.py export_activity CODE` "
            "writes one.",
            "type": "object",
            "properties": {
                "code": {**CODE, "description": "Unique activity code: a-z, 0-9 and hyphens."},
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "template": {
                    **CODE,
                    "description": "Strategy template code; created with the chains below when "
                    "missing, otherwise its chains must equal them.",
                },
                "template_name": {"type": "string", "minLength": 1, "maxLength": 200},
                "timezone": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "description": "IANA timezone; starts_at and ends_at are local to it.",
                },
                "starts_at": LOCAL_TIME,
                "ends_at": LOCAL_TIME,
                "segment": {
                    "type": ["string", "null"],
                    "pattern": r"^[-a-zA-Z0-9_]+$",
                    "maxLength": 100,
                    "description": "Audience segment code, or null for everyone.",
                },
                "budget": _decimal(12),
                "gameplay": {
                    "type": "object",
                    "description": "The gameplay the chains were built from, and its "
                    "parameters (docs/gameplays.md); kept on a newly created template.",
                    "properties": {
                        "code": CODE,
                        "parameters": {"type": "object"},
                    },
                    "required": ["code", "parameters"],
                    "additionalProperties": False,
                },
                "on_exhausted": {
                    "enum": list(ExhaustionPolicy.values),
                    "default": ExhaustionPolicy.PAUSE.value,
                },
                "coupons_follow_orders": {
                    "type": "boolean",
                    "default": True,
                    "description": "A coupon named on an order is redeemed when the order is "
                    "paid and released when it is cancelled.",
                },
                "benefits": {
                    "type": "array",
                    "maxItems": 200,
                    "items": {
                        "type": "object",
                        "properties": {
                            "code": CODE,
                            "kind": {"enum": list(BenefitKind.values)},
                            "name": {"type": "string", "maxLength": 200},
                            "value": _decimal(10),
                            "stock": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
                            "per_customer_limit": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_INT,
                            },
                            "coupon": coupon_schema(MAX_INT),
                        },
                        "required": ["code", "kind"],
                        "additionalProperties": False,
                    },
                },
                "chains": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 50,
                    "items": {
                        "type": "object",
                        "properties": {
                            "channel": CHANNEL,
                            "lock": {"type": "boolean", "default": True},
                            "steps": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 50,
                                "items": _step(processor_configs),
                            },
                        },
                        "required": ["channel", "steps"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": [
                "code",
                "name",
                "template",
                "timezone",
                "starts_at",
                "ends_at",
                "benefits",
                "chains",
            ],
            "additionalProperties": False,
        }


def published_schema_text() -> str:
    return json.dumps(document_schema(), indent=2, ensure_ascii=False) + "\n"

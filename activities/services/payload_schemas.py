"""Channels' payload schemas: checked when an operator saves one, compiled once per process,
and never able to turn an event into a server error.

`pattern` and `patternProperties` are refused: a regular expression an operator typed would run
on every event of the channel, and Python's engine can take exponential time on a hostile
payload. `enum`, `const`, lengths, ranges and `format` cover what payloads need.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

MAX_SCHEMA_CHARACTERS = 65_536
FORBIDDEN_KEYWORDS = ("pattern", "patternProperties")


def schema_problems(schema: Any) -> list[str]:
    """Why this payload schema cannot be saved, in the operator's language (empty: it can)."""
    if schema is None:
        return []
    if not isinstance(schema, dict):
        return [_('The schema must be a JSON object, such as {"type": "object"}.')]
    if len(json.dumps(schema)) > MAX_SCHEMA_CHARACTERS:
        return [_("The schema is too large (at most 64 KiB).")]
    problems = [
        _("%(keyword)s is not allowed (at %(where)s): use enum, const or lengths instead.")
        % {"keyword": keyword, "where": where or _("the top")}
        for keyword, where in _keywords(schema, "")
        if keyword in FORBIDDEN_KEYWORDS
    ]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = ".".join(map(str, error.absolute_path))
        problems.append(
            _("The schema is not valid JSON Schema (at %(where)s): %(message)s")
            % {"where": where or _("the top"), "message": error.message}
        )
    return problems


def _keywords(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, where
            yield from _keywords(value, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _keywords(value, f"{where}[{index}]")


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Draft202012Validator | None:
    """The compiled schema, once per process and schema; None when it is not usable."""
    schema = json.loads(schema_text)
    return None if schema_problems(schema) else Draft202012Validator(schema)


def payload_errors(*, schema: dict[str, Any], payload: Any) -> list[dict[str, str]]:
    """Where the payload breaks the schema: [{path, message}], sorted by path. A schema stored
    before these checks existed, and broken, reports one error instead of raising."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    if validator is None:
        return [{"path": "payload", "message": _("The channel's payload schema is not usable.")}]
    errors = sorted(validator.iter_errors(payload), key=lambda error: list(error.absolute_path))
    return [
        {"path": ".".join(["payload", *map(str, error.absolute_path)]), "message": error.message}
        for error in errors
    ]

"""From text (YAML or JSON) or an already parsed object to a plain, bounded JSON tree.

A document comes from an operator's file or an admin upload, so it is treated as hostile:
`yaml.safe_load` only (no Python tags), a byte limit before parsing, and a walk that copies
the tree while counting every node it visits. Counting visits (not distinct objects) stops a
"billion laughs" document whose few YAML aliases expand into millions of nodes, and the depth
limit stops a self-referencing alias. What PostgreSQL's jsonb or the JSON encoder would refuse
later (NUL characters, NaN, integers beyond 64 bits, non-text keys) is refused here, with its path.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

import yaml
from django.utils.translation import gettext as _

from activities.engine.errors import ConfigError, error_details
from core.errors import InvalidConfiguration

MAX_DOCUMENT_BYTES = 1_000_000
MAX_NODES = 50_000
MAX_DEPTH = 32
MAX_INTEGER = 2**63 - 1

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(parts: Any) -> str:
    """["chains", 1, "steps", 0, "config"] -> chains[1].steps[0].config; odd keys are quoted
    (`payload["a.b"]`) so that a key can never pose as a different path."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def refuse(message: str, errors: list[ConfigError]) -> InvalidConfiguration:
    return InvalidConfiguration(message, details=error_details(errors))


def _invalid(path: list[Any], message: str, code: str) -> InvalidConfiguration:
    return refuse(
        _("The activity definition is not valid."), [ConfigError(format_path(path), message, code)]
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(_("%(name)s is not a number JSON allows.") % {"name": name})


def parse_text(text: str | bytes) -> Any:
    """Parse a YAML or JSON document (JSON is tried first for text that opens with "{")."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_DOCUMENT_BYTES:
        raise _invalid(
            [],
            _("The document is %(size)d bytes; the limit is %(limit)d.")
            % {"size": size, "limit": MAX_DOCUMENT_BYTES},
            "document_too_large",
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _invalid([], _("The document is not UTF-8 text."), "invalid_encoding") from None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            pass  # YAML's flow style also opens with "{"; its parser explains what is wrong.
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = (
            _(" (line %(line)d, column %(column)d)")
            % {"line": mark.line + 1, "column": mark.column + 1}
            if mark
            else ""
        )
        raise _invalid([], f"{error.problem or error.context}{where}", "invalid_syntax") from None
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise _invalid(
            [], _("The document cannot be read: %(error)s") % {"error": error}, "invalid_syntax"
        ) from None


def plain_tree(document: Any) -> Any:
    """A fresh copy of `document` made only of dict, list, str, int, float, bool and None.

    YAML timestamps become ISO text (the importer reads times as text in the document's zone).
    """
    budget = [MAX_NODES]

    def walk(value: Any, path: list[Any]) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise _invalid(
                [],
                _("The document has more than %(limit)d values.") % {"limit": MAX_NODES},
                "document_too_large",
            )
        if len(path) > MAX_DEPTH:
            raise _invalid(
                path,
                _("The document nests deeper than %(limit)d levels.") % {"limit": MAX_DEPTH},
                "document_too_deep",
            )
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            if abs(value) > MAX_INTEGER:
                raise _invalid(path, _("The number is too large."), "invalid_number")
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _invalid(path, _("Use a finite number."), "invalid_number")
            return value
        if isinstance(value, str):
            if "\x00" in value:
                raise _invalid(path, _("Text may not contain NUL characters."), "invalid_text")
            return value
        if isinstance(value, dt.datetime):
            return value.isoformat(timespec="seconds")
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str) or "\x00" in key:
                    raise _invalid(
                        path,
                        _("Keys must be text; %(key)r is not (quote it).") % {"key": key},
                        "invalid_key",
                    )
                out[key] = walk(item, [*path, key])
            return out
        if isinstance(value, list | tuple):
            return [walk(item, [*path, index]) for index, item in enumerate(value)]
        raise _invalid(
            path,
            _("Unsupported value of type %(type)s.") % {"type": type(value).__name__},
            "invalid_value",
        )

    return walk(document, [])

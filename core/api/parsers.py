"""The API's JSON parser, with the limits DRF's own parser leaves out.

With DRF's parser an oversized body is Django's HTML 400 page, and Python's json module
answers a deeply nested body (`[[[[...` a few hundred kilobytes long) with RecursionError, a
500. Here a body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413 `payload_too_large` (checked on
Content-Length before reading, and again on what was read), nesting deeper than
MAX_JSON_DEPTH is 400 `payload_too_deep`, and text PostgreSQL cannot store (NUL, lone
surrogates) is 400 `invalid_text` rather than a database error.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

# No API body needs more: condition trees stop at 12 levels, payloads are flat-ish objects.
MAX_JSON_DEPTH = 64


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class PayloadTooDeep(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "payload_too_deep"


class InvalidText(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_text"


def _check(value: Any) -> None:
    """Refuse what PostgreSQL cannot store, walking without recursion (a hostile body must not
    exhaust the stack here): nesting deeper than MAX_JSON_DEPTH, NUL characters (jsonb and
    text columns refuse \\u0000) and lone surrogates (not encodable as UTF-8)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if isinstance(item, dict):
            children: Any = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > MAX_JSON_DEPTH:
            raise PayloadTooDeep(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
        stack.extend((child, level + 1) for child in children)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InvalidText("Text in the body may not contain the NUL character (\\u0000).")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidText(
            "Text in the body must be valid Unicode (no lone surrogate \\ud800-\\udfff)."
        ) from None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {limit} bytes.")


class LimitedJSONParser(BaseParser):
    """Not a JSONParser subclass on purpose: DRF reads `request.body` up front for those,
    which answers an oversized body with Django's HTML 400 instead of this 413."""

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = parser_context.get("request")
        meta = request.META if request is not None else {}
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if limit is not None and declared > limit:
            raise _too_large(limit)
        raw = stream.read(limit + 1 if limit is not None else -1) if stream else b""
        if limit is not None and len(raw) > limit:
            raise _too_large(limit)
        encoding = _text_encoding(parser_context)
        try:
            text = codecs.decode(raw, encoding)
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise PayloadTooDeep(
                f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels."
            ) from None
        except ValueError as error:
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
        _check(data)
        return data


def _text_encoding(parser_context: Any) -> str:
    """The request's charset, if it is a text encoding: a bytes-to-bytes codec such as
    bz2_codec would decompress a small body into a huge one after the size check."""
    encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
    try:
        "".encode(encoding)
    except (LookupError, UnicodeError):
        raise exceptions.ParseError(
            f'Unsupported charset "{encoding}" in the Content-Type header.'
        ) from None
    return encoding


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; PostgreSQL's jsonb refuses them later, as a 500.
    raise ValueError(f"{name} is not a JSON value")

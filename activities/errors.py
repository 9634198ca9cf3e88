"""Errors of the event intake; the shared ones live in `core.errors`."""

from core.errors import GambitError


class UnknownChannel(GambitError):
    code = "unknown_channel"


class InternalChannel(GambitError):
    code = "internal_channel"
    http_status = 403


class UnknownActivity(GambitError):
    code = "unknown_activity"


class InvalidPayload(GambitError):
    code = "invalid_payload"

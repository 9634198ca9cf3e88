"""Domain errors: each has a stable code the API returns and the admin shows."""

from typing import Any


class GambitError(Exception):
    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(GambitError):
    code = "not_found"


class UnknownChannel(GambitError):
    code = "unknown_channel"


class UnknownActivity(GambitError):
    code = "unknown_activity"


class InvalidPayload(GambitError):
    code = "invalid_payload"


class IdempotencyConflict(GambitError):
    code = "idempotency_key_reused"


class InvalidConfiguration(GambitError):
    """A configuration that cannot be saved; `details` lists {path, message, code}."""

    code = "invalid_configuration"


class TransitionNotAllowed(GambitError):
    code = "transition_not_allowed"

"""Domain errors: each has a stable code the API returns and the admin shows, and the HTTP status
the API answers with. Apps subclass these; the kernel's exception handler needs no list of them."""

from typing import Any


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "detail": message}
    if details is not None:
        body["errors"] = details
    return body


class GambitError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(GambitError):
    code = "not_found"
    http_status = 404


class InvalidConfiguration(GambitError):
    """A configuration that cannot be saved; `details` lists {path, message, code}."""

    code = "invalid_configuration"


class TransitionNotAllowed(GambitError):
    code = "transition_not_allowed"
    http_status = 409


class IdempotencyConflict(GambitError):
    """The same Idempotency-Key came back with another request body."""

    code = "idempotency_key_reused"
    http_status = 422

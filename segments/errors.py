"""Audience errors. Each subclasses a `core.errors` class, so the API's exception
handler gives it the right status (404, 409, else 400) and its stable code."""

from core.errors import GambitError, InvalidConfiguration, NotFound, TransitionNotAllowed


class TooManyRows(GambitError):
    code = "too_many_rows"


class InvalidCustomer(GambitError):
    """A customer record that cannot be stored; `details` lists {path, code, message}."""

    code = "invalid_customer"


class InvalidOrder(GambitError):
    code = "invalid_order"


class UnknownTransition(GambitError):
    code = "unknown_transition"


class OrderNotFound(NotFound):
    code = "not_found"


class SegmentNotFound(NotFound):
    code = "not_found"


class OrderTransitionNotAllowed(TransitionNotAllowed):
    def __init__(self, message: str, *, allowed: list[str]) -> None:
        super().__init__(
            message,
            details=[{"path": "transition", "code": self.code, "message": message}],
        )
        self.allowed = allowed


class InvalidSegmentRule(InvalidConfiguration):
    code = "invalid_rule"

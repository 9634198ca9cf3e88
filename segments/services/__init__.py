"""Writes to the audience. `ensure_customer` is what the activity engine calls."""

from segments.services.customers import ensure_customer

__all__ = ["ensure_customer"]

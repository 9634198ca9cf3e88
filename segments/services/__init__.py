"""Writes to the audience; the activity engine calls `ensure_customer` and `ensure_customer_id`."""

from segments.services.customers import ensure_customer, ensure_customer_id

__all__ = ["ensure_customer", "ensure_customer_id"]

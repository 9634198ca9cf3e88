"""Notifications in the back-office, one module per model: importing them registers them."""

from notifications.admin import broadcasts, deliveries, templates

__all__ = ["broadcasts", "deliveries", "templates"]

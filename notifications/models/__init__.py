"""Notification templates, broadcasts and their deliveries, one module each."""

# Migration 0001 names the field defaults and the timezone validator by their place in the
# single `notifications.models` module this package replaced: they stay importable from here.
from notifications.models.broadcasts import (
    Broadcast,
    BroadcastKind,
    BroadcastState,
    _default_batch_size,
    _default_cap,
    _default_pause_after,
    _default_timezone,
    _default_window,
    validate_timezone,
)
from notifications.models.deliveries import OPEN_STATUSES, Delivery, DeliveryStatus, SkipReason
from notifications.models.templates import ChannelKind, NotificationTemplate

__all__ = [
    "OPEN_STATUSES",
    "Broadcast",
    "BroadcastKind",
    "BroadcastState",
    "ChannelKind",
    "Delivery",
    "DeliveryStatus",
    "NotificationTemplate",
    "SkipReason",
    "_default_batch_size",
    "_default_cap",
    "_default_pause_after",
    "_default_timezone",
    "_default_window",
    "validate_timezone",
]

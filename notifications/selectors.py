"""Reads: a broadcast's progress, for the API, the admin page and its polling endpoint."""

from __future__ import annotations

from typing import Any

from notifications.models import Broadcast


def progress(broadcast: Broadcast) -> dict[str, Any]:
    """Counters as the database holds them (every change is a conditional UPDATE)."""
    finished = broadcast.sent + broadcast.failed + broadcast.skipped
    return {
        "state": broadcast.state,
        "state_reason": broadcast.state_reason,
        "planning_done": broadcast.planned_at is not None,
        "planned": broadcast.planned,
        "sent": broadcast.sent,
        "failed": broadcast.failed,
        "skipped": broadcast.skipped,
        "skipped_by_reason": dict(sorted((broadcast.skipped_by_reason or {}).items())),
        "outstanding": broadcast.outstanding,
        "errors_since_resume": broadcast.error_count,
        "percent": round(100 * finished / broadcast.planned, 1) if broadcast.planned else 0.0,
    }


def broadcast_progress(*, broadcast_id: int) -> dict[str, Any] | None:
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    return None if broadcast is None else progress(broadcast)

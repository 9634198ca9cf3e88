"""Celery tasks: thin, idempotent, taking ids; the services do the work."""

from celery import shared_task
from django.db import DatabaseError

from segments.models import Segment
from segments.services.segments import refresh_snapshot

_FANOUT = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 5,
    "queue": "fanout",
}


@shared_task(**_FANOUT)
def refresh_segment_snapshot_task(segment_id: int) -> int | None:
    """Rewrite one segment's snapshot; a segment deleted meanwhile is simply gone."""
    if not Segment.objects.filter(pk=segment_id).exists():
        return None
    return refresh_snapshot(segment_id=segment_id)


@shared_task(**_FANOUT)
def refresh_dynamic_segments_task() -> int:
    """For beat: queue a snapshot refresh of every dynamic segment."""
    ids = list(Segment.objects.filter(kind=Segment.Kind.DYNAMIC).values_list("pk", flat=True))
    for segment_id in ids:
        refresh_segment_snapshot_task.delay(segment_id)
    return len(ids)

"""How often an event may be tried, and what becomes of one that used up its attempts.

Each processing attempt is counted before it starts, by a conditional UPDATE committed on its
own: the count survives whatever ends the attempt (an error, the soft time limit, the hard limit
killing the pool process, a lost worker whose message the broker delivers again). An event that
breaks or stalls every worker it reaches is therefore tried at most GAMBIT_EVENT_MAX_ATTEMPTS
times; then it fails as a dead letter with its reason and last error, for an operator to look
at and, once the cause is fixed, run again.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, QuerySet, TextField, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from activities import enqueue
from activities.models import Event, EventFailure, EventState
from activities.services import waiters

logger = structlog.get_logger(__name__)

UNFINISHED = (EventState.PENDING, EventState.RUNNING)
# Dead letters one sweep records; the next sweep takes the rest.
DEAD_LETTER_BATCH = 1000


@functools.cache
def _start_attempt_sql() -> str:
    # Every event runs this, so its SQL is built once rather than by the ORM on each call.
    quote = connection.ops.quote_name
    column = {field.name: quote(field.column) for field in Event._meta.concrete_fields}
    attempts = column["attempts"]
    return (
        f"UPDATE {quote(Event._meta.db_table)} SET {attempts} = {attempts} + 1, "  # noqa: S608  (names from the model, values bound)
        f"{column['dispatched_at']} = %s "
        f"WHERE {column['id']} = %s AND {column['state']} IN (%s, %s) AND {attempts} < %s"
    )


def _event_key(event_id: Any) -> uuid.UUID | None:
    try:
        return event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id))
    except ValueError:
        return None


def start_attempt(*, event_id: Any) -> bool:
    """Count one attempt at the event before it begins; False when it may not be tried: unknown,
    finished, or out of attempts (it is dead-lettered here and now).

    Call it outside the attempt's transaction, so the count commits whatever the attempt does.
    The attempt's start also restarts the sweeper's clock."""
    key = _event_key(event_id)
    if key is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            _start_attempt_sql(),
            [timezone.now(), key, *UNFINISHED, settings.GAMBIT_EVENT_MAX_ATTEMPTS],
        )
        if cursor.rowcount:
            return True
    dead_letter_exhausted(events=Event.objects.filter(pk=key))
    return False


def dead_letter_exhausted(*, events: QuerySet[Event]) -> int:
    """Fail the unfinished events among `events` that used up their attempts (dead letters),
    keeping the last error; an attempt cut off by the hard limit or lost with its worker left
    none, and the event says so."""
    ids = list(
        events.filter(state__in=UNFINISHED, attempts__gte=settings.GAMBIT_EVENT_MAX_ATTEMPTS)
        .order_by()
        .values_list("pk", flat=True)[:DEAD_LETTER_BATCH]
    )
    if not ids:
        return 0
    failed = Event.objects.filter(
        pk__in=ids, state__in=UNFINISHED, attempts__gte=settings.GAMBIT_EVENT_MAX_ATTEMPTS
    ).update(
        state=EventState.FAILED,
        failure_reason=EventFailure.ATTEMPTS_EXHAUSTED,
        finished_at=timezone.now(),
        error=Case(
            When(
                error="",
                then=Value(
                    gettext(
                        "No attempt finished: each one was stopped by the hard time limit or "
                        "lost with its worker."
                    )
                ),
            ),
            default=F("error"),
            output_field=TextField(),
        ),
    )
    for event_id in ids:
        waiters.announce(event_id=event_id)
    logger.warning("events_dead_lettered", count=failed)
    return failed


def record_time_limit(*, event_id: Any, seconds: int) -> None:
    """The attempt was stopped by its soft time limit and its transaction rolled back: say so on
    the event, which waits for the sweeper to try it again while it has attempts left."""
    if connection.connection is not None and not connection.is_usable():
        # The interruption may have come mid-query and left the session unusable.
        connection.close()
    Event.objects.filter(pk=event_id, state__in=UNFINISHED).update(
        state=EventState.RUNNING,
        error=gettext("The attempt was stopped by its time limit (%(seconds)s s).")
        % {"seconds": seconds},
    )


def rerun_events(*, event_ids: Iterable[Any]) -> int:
    """Give failed events (dead letters) a fresh set of attempts and dispatch them once this
    transaction commits; events in any other state are left alone. Returns how many."""
    with transaction.atomic():
        ids = list(
            Event.objects.select_for_update()
            .filter(pk__in=list(event_ids), state=EventState.FAILED)
            .values_list("pk", flat=True)
        )
        Event.objects.filter(pk__in=ids).update(
            state=EventState.PENDING,
            attempts=0,
            failure_reason="",
            error="",
            finished_at=None,
            dispatched_at=timezone.now(),
        )
        for event_id in ids:
            enqueue.run_event_on_commit(event_id=event_id)
    logger.info("events_rerun", count=len(ids))
    return len(ids)

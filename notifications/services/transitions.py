"""Running one broadcast transition, and the two the system runs from inside its own work.

A transition locks the broadcast row, checks the operator's permission, runs the FSM method
(which changes the row only) with the operator and reason in django-fsm-log's trail, saves, and
re-derives the beat rows in the same transaction. The lifecycle services
(`services.broadcasts`) are built from these steps; planning fails a broadcast whose segment
cannot be read, and a sender pauses one whose provider keeps failing, through the same steps.

`by` is the operator acting (checked against the transition's permission), or None for the
system.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import structlog
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django_fsm import can_proceed
from django_fsm_log.helpers import FSMLogDescriptor

from core.errors import TransitionNotAllowed
from notifications.models import Broadcast, BroadcastState
from notifications.services.scheduling import sync_schedule

User = AbstractBaseUser | AnonymousUser

logger = structlog.get_logger(__name__)

REASON_TOO_MANY_ERRORS = gettext_noop("paused after %(errors)s provider errors")


def lock_broadcast(broadcast_id: int) -> Broadcast:
    return (
        Broadcast.objects.select_for_update(of=("self",))
        .select_related("template")
        .get(pk=broadcast_id)
    )


def require_transition(
    broadcast: Broadcast, transition: Callable[..., Any], *, by: User | None
) -> None:
    """Raise unless the transition is allowed from the current state and to `by`."""
    if not can_proceed(transition, check_conditions=False):
        raise TransitionNotAllowed(
            _("Broadcast %(name)s is %(state)s: it cannot be %(done)s now.")
            % {
                "name": broadcast.name,
                "state": broadcast.get_state_display(),
                "done": transition.__name__,
            }
        )
    if by is not None:
        meta = transition._django_fsm  # type: ignore[attr-defined]
        if not meta.has_transition_perm(broadcast, broadcast.state, by):
            raise PermissionDenied(_("You are not allowed to send or stop broadcasts."))


def run_transition(
    broadcast: Broadcast,
    transition: Callable[..., Any],
    *,
    by: User | None,
    description: str = "",
    **kwargs: Any,
) -> None:
    """Run a transition with the operator and reason recorded in django-fsm-log's trail."""
    with (
        FSMLogDescriptor(broadcast, "by", by if by is not None and by.is_authenticated else None),
        FSMLogDescriptor(broadcast, "description", description or None),
    ):
        transition(**kwargs)


def save_broadcast(broadcast: Broadcast) -> None:
    """Save the row and its beat rows (call in the transaction that holds the row lock)."""
    broadcast.save()
    sync_schedule(broadcast=broadcast)
    transaction.on_commit(
        partial(logger.info, "broadcast_state", broadcast=broadcast.pk, state=broadcast.state)
    )


def pause_for_errors(*, broadcast_id: int, errors: int) -> bool:
    """The auto-pause: idempotent, and only while the error count is still over the limit."""
    with transaction.atomic():
        broadcast = lock_broadcast(broadcast_id)
        if (
            broadcast.state != BroadcastState.SENDING
            or broadcast.error_count < broadcast.pause_after_errors
        ):
            return False
        reason = REASON_TOO_MANY_ERRORS % {"errors": errors}
        run_transition(broadcast, broadcast.pause, by=None, description=reason, reason=reason)
        save_broadcast(broadcast)
    logger.warning("broadcast_auto_paused", broadcast=broadcast_id, errors=errors)
    return True


def fail_broadcast(*, broadcast_id: int, reason: str) -> bool:
    with transaction.atomic():
        broadcast = lock_broadcast(broadcast_id)
        if not can_proceed(broadcast.fail, check_conditions=False):
            return False
        run_transition(broadcast, broadcast.fail, by=None, description=reason, reason=reason)
        save_broadcast(broadcast)
    logger.error("broadcast_failed", broadcast=broadcast_id, reason=reason)
    return True

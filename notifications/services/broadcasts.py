"""A broadcast's lifecycle: schedule, start (launch), pause, resume, cancel, complete, and the
firings of a standing (recurring or birthday) broadcast.

Every service locks the broadcast row, runs the FSM transition (which changes the row only),
saves, re-derives its beat rows in the same transaction (`services.transitions`), and leaves
tasks for `transaction.on_commit`. The ones beat and the workers call (launch, firing a
standing broadcast, completion) are idempotent: re-checked under the lock, a second call
changes nothing.

`by` is the operator acting (checked against the transition's permission), or None for the
system.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import InvalidConfiguration, TransitionNotAllowed
from notifications import circuit, enqueue, rendering
from notifications.backends import get_backend
from notifications.models import (
    OPEN_STATUSES,
    Broadcast,
    BroadcastKind,
    BroadcastState,
    Delivery,
    DeliveryStatus,
)
from notifications.services import dispatch
from notifications.services.deliveries import skip_cancelled
from notifications.services.scheduling import parse_cron
from notifications.services.templates import hold_template
from notifications.services.transitions import (
    User,
    lock_broadcast,
    require_transition,
    run_transition,
    save_broadcast,
)

# Beat and workers run on different hosts: a launch this early is still on time.
CLOCK_SKEW = dt.timedelta(seconds=5)
# A birthday window never reaches back further than this (beat down for longer: the
# greetings of the missed hours are not sent late).
MAX_BIRTHDAY_WINDOW = dt.timedelta(hours=24)
SETTLE_CHUNK = 10_000


def readiness_problems(broadcast: Broadcast) -> list[dict[str, str]]:
    """Why this broadcast cannot be scheduled or started ({path, message, code}), if anything."""
    problems: list[dict[str, str]] = []
    template = broadcast.template
    if rendering.uses_transactional_data(template.sources().values()):
        problems.append(
            {
                "path": "template",
                "message": _(
                    "Template %(code)s uses event, vars or activity placeholders, which only "
                    "a chain's notify step has."
                )
                % {"code": template.code},
                "code": "transactional_template",
            }
        )
    problems.extend(
        {"path": "template", "message": problem, "code": "channel_not_configured"}
        for problem in get_backend(template.channel).problems()
    )
    if broadcast.kind == BroadcastKind.RECURRING:
        try:
            parse_cron(broadcast.cron)
        except ValueError as error:
            problems.append({"path": "cron", "message": str(error), "code": "invalid_cron"})
    if broadcast.kind == BroadcastKind.BIRTHDAY and broadcast.birthday_hour is None:
        problems.append(
            {
                "path": "birthday_hour",
                "message": _("A birthday broadcast needs the local hour to send at."),
                "code": "required",
            }
        )
    if (
        broadcast.kind == BroadcastKind.ONE_OFF
        and broadcast.state == BroadcastState.DRAFT
        and (broadcast.send_at is not None and broadcast.send_at <= timezone.now())
    ):
        problems.append(
            {
                "path": "send_at",
                "message": _("The start time has passed; send now or pick a later time."),
                "code": "in_the_past",
            }
        )
    return problems


def _check_ready(broadcast: Broadcast, *, scheduling: bool) -> None:
    problems = readiness_problems(broadcast)
    if not scheduling:
        problems = [p for p in problems if p["path"] != "send_at"]
    if scheduling and broadcast.kind == BroadcastKind.ONE_OFF and broadcast.send_at is None:
        problems.append({"path": "send_at", "message": _("Pick when to send."), "code": "required"})
    if problems:
        raise InvalidConfiguration(
            _("Broadcast %(name)s cannot go out: %(problems)s")
            % {"name": broadcast.name, "problems": " ".join(p["message"] for p in problems)},
            details=problems,
        )


def schedule_broadcast(*, broadcast_id: int, by: User | None = None) -> Broadcast:
    """draft -> scheduled: a one-off clocked beat task at `send_at`, or the standing crontab."""
    with transaction.atomic():
        broadcast = lock_broadcast(broadcast_id)
        require_transition(broadcast, broadcast.schedule, by=by)
        broadcast.template = hold_template(template_id=broadcast.template_id)
        _check_ready(broadcast, scheduling=True)
        run_transition(broadcast, broadcast.schedule, by=by)
        save_broadcast(broadcast)
    return broadcast


def unschedule_broadcast(*, broadcast_id: int, by: User | None = None) -> Broadcast:
    with transaction.atomic():
        broadcast = lock_broadcast(broadcast_id)
        require_transition(broadcast, broadcast.unschedule, by=by)
        run_transition(broadcast, broadcast.unschedule, by=by)
        save_broadcast(broadcast)
    return broadcast


def start_broadcast(*, broadcast_id: int, by: User | None = None) -> Broadcast:
    """draft or scheduled -> sending, now: the planner and the senders start after commit."""
    with transaction.atomic():
        broadcast = lock_broadcast(broadcast_id)
        require_transition(broadcast, broadcast.start, by=by)
        if broadcast.kind != BroadcastKind.ONE_OFF:
            raise TransitionNotAllowed(
                _("A recurring or birthday broadcast sends on its schedule; schedule it.")
            )
        broadcast.template = hold_template(template_id=broadcast.template_id)
        _check_ready(broadcast, scheduling=False)
        run_transition(broadcast, broadcast.start, by=by)
        save_broadcast(broadcast)
        dispatch.kick_on_commit(broadcast)
    return broadcast


def launch_broadcast(*, broadcast_id: int) -> bool:
    """Beat's one-off launch: scheduled -> sending once `send_at` has come. Idempotent."""
    with transaction.atomic():
        broadcast = lock_broadcast(broadcast_id)
        if (
            broadcast.state != BroadcastState.SCHEDULED
            or broadcast.kind != BroadcastKind.ONE_OFF
            or broadcast.send_at is None
            or broadcast.send_at > timezone.now() + CLOCK_SKEW
        ):
            return False
        run_transition(broadcast, broadcast.start, by=None, description=_("scheduled start"))
        save_broadcast(broadcast)
        dispatch.kick_on_commit(broadcast)
    return True


def pause_broadcast(*, broadcast_id: int, by: User | None = None, reason: str = "") -> Broadcast:
    """sending -> paused: senders stop within a flush and hand back what they had not sent."""
    with transaction.atomic():
        broadcast = lock_broadcast(broadcast_id)
        require_transition(broadcast, broadcast.pause, by=by)
        run_transition(broadcast, broadcast.pause, by=by, description=reason, reason=reason)
        save_broadcast(broadcast)
    return broadcast


def resume_broadcast(*, broadcast_id: int, by: User | None = None) -> Broadcast:
    """paused -> sending: the error count starts again, waiting retries become due now and the
    provider's circuit is closed (the operator says it is back)."""
    with transaction.atomic():
        broadcast = lock_broadcast(broadcast_id)
        require_transition(broadcast, broadcast.resume, by=by)
        run_transition(broadcast, broadcast.resume, by=by)
        broadcast.error_count = 0
        save_broadcast(broadcast)
        Delivery.objects.filter(
            broadcast_id=broadcast.pk,
            status=DeliveryStatus.QUEUED,
            next_attempt_at__isnull=False,
        ).update(next_attempt_at=None)
        circuit.reset(broadcast.template.channel)
        dispatch.kick_on_commit(broadcast)
    return broadcast


def cancel_broadcast(*, broadcast_id: int, by: User | None = None, reason: str = "") -> Broadcast:
    """-> cancelled: nothing more is sent; what was still queued is skipped(cancelled). A
    standing broadcast stops firing, and its occurrences in flight stop too."""
    with transaction.atomic():
        broadcast = lock_broadcast(broadcast_id)
        require_transition(broadcast, broadcast.cancel, by=by)
        run_transition(broadcast, broadcast.cancel, by=by, description=reason, reason=reason)
        save_broadcast(broadcast)
        cancelled = [broadcast.pk]
        for child in Broadcast.objects.select_for_update().filter(
            parent_id=broadcast.pk,
            state__in=[BroadcastState.SENDING, BroadcastState.PAUSED, BroadcastState.SCHEDULED],
        ):
            run_transition(child, child.cancel, by=by, description=reason, reason=reason)
            save_broadcast(child)
            cancelled.append(child.pk)
        for pk in cancelled:
            enqueue.settle_cancelled_broadcast_on_commit(broadcast_id=pk)
    return broadcast


def has_open_deliveries(*, broadcast_id: int) -> bool:
    return Delivery.objects.filter(broadcast_id=broadcast_id, status__in=OPEN_STATUSES).exists()


def complete_if_done(*, broadcast_id: int) -> bool:
    """sending -> completed once planning has finished and no delivery is queued or in
    flight. An occurrence of a standing broadcast that planned nobody is deleted instead."""
    with transaction.atomic():
        broadcast = (
            Broadcast.objects.select_for_update(of=("self",)).filter(pk=broadcast_id).first()
        )
        if (
            broadcast is None
            or broadcast.state != BroadcastState.SENDING
            or broadcast.planned_at is None
            or has_open_deliveries(broadcast_id=broadcast_id)
        ):
            return False
        if broadcast.parent_id is not None and broadcast.planned == 0:
            broadcast.delete()
            return True
        run_transition(broadcast, broadcast.complete, by=None)
        save_broadcast(broadcast)
    return True


def settle_cancelled(*, broadcast_id: int) -> int:
    """Mark a cancelled broadcast's queued deliveries skipped(cancelled), a chunk at a time."""
    total = 0
    while True:
        done = skip_cancelled(broadcast_id=broadcast_id, limit=SETTLE_CHUNK)
        total += done
        if done < SETTLE_CHUNK:
            return total


# --- standing broadcasts (recurring, birthday) ------------------------------------------------


def _tick(now: dt.datetime) -> dt.datetime:
    minutes = settings.NOTIFICATIONS_BIRTHDAY_TICK_MINUTES
    floored = now.replace(second=0, microsecond=0)
    return floored - dt.timedelta(minutes=floored.minute % minutes)


def fire_standing_broadcast(
    *, broadcast_id: int, now: dt.datetime | None = None
) -> Broadcast | None:
    """One firing of a recurring or birthday broadcast: a new occurrence, sending at once.

    Idempotent per firing: the occurrence instant (the minute, or the birthday tick) is unique
    per standing broadcast, so beat firing twice creates one occurrence. A birthday occurrence
    covers (previous firing, this firing], at most 24 hours back.
    """
    now = now or timezone.now()
    with transaction.atomic():
        parent = lock_broadcast(broadcast_id)
        if parent.state != BroadcastState.SCHEDULED or not parent.is_standing:
            return None
        if parent.kind == BroadcastKind.BIRTHDAY:
            occurrence = _tick(now)
            fallback = occurrence - dt.timedelta(
                minutes=settings.NOTIFICATIONS_BIRTHDAY_TICK_MINUTES
            )
            window_start = max(parent.last_occurrence or fallback, occurrence - MAX_BIRTHDAY_WINDOW)
        else:
            occurrence = now.replace(second=0, microsecond=0)
            window_start = None
        if parent.last_occurrence is not None and occurrence <= parent.last_occurrence:
            return None
        child = Broadcast.objects.create(
            name=f"{parent.name} @ {occurrence:%Y-%m-%d %H:%M} UTC",
            template_id=parent.template_id,
            segment_id=parent.segment_id,
            kind=BroadcastKind.ONE_OFF,
            timezone=parent.timezone,
            parent=parent,
            occurrence=occurrence,
            window_start=window_start,
            frequency_cap=parent.frequency_cap,
            frequency_window=parent.frequency_window,
            quiet_start=parent.quiet_start,
            quiet_end=parent.quiet_end,
            rate_limit=parent.rate_limit,
            batch_size=parent.batch_size,
            pause_after_errors=parent.pause_after_errors,
        )
        parent.last_occurrence = occurrence
        parent.save(update_fields=["last_occurrence", "updated_at"])
        run_transition(
            child,
            child.start,
            by=None,
            description=_("occurrence of %(name)s") % {"name": parent.name},
        )
        save_broadcast(child)
        dispatch.kick_on_commit(child)
    return child

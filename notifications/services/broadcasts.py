"""A broadcast's lifecycle: schedule, start (launch), pause, resume, cancel, complete, fail.

Every service locks the broadcast row, runs the FSM transition (which changes the row only),
saves, re-derives its beat rows in the same transaction, and leaves tasks for
`transaction.on_commit`. The ones beat and the workers call (launch, firing a standing
broadcast, completion, auto-pause) are idempotent: re-checked under the lock, a second call
changes nothing.

`by` is the operator acting (checked against the transition's permission), or None for the
system.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django_fsm import can_proceed
from django_fsm_log.helpers import FSMLogDescriptor

from core.errors import InvalidConfiguration, TransitionNotAllowed
from notifications import circuit, rendering
from notifications.backends import get_backend
from notifications.models import (
    Broadcast,
    BroadcastKind,
    BroadcastState,
    Delivery,
    DeliveryStatus,
    SkipReason,
)
from notifications.services import dispatch
from notifications.services.scheduling import parse_cron, sync_schedule
from notifications.services.sql import cursor as statement_cursor

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser

logger = structlog.get_logger(__name__)

REASON_TOO_MANY_ERRORS = gettext_noop("paused after %(errors)s provider errors")
# Beat and workers run on different hosts: a launch this early is still on time.
CLOCK_SKEW = dt.timedelta(seconds=5)
# A birthday window never reaches back further than this (beat down for longer: the
# greetings of the missed hours are not sent late).
MAX_BIRTHDAY_WINDOW = dt.timedelta(hours=24)
SETTLE_CHUNK = 10_000


def _lock(broadcast_id: int) -> Broadcast:
    return (
        Broadcast.objects.select_for_update(of=("self",))
        .select_related("template")
        .get(pk=broadcast_id)
    )


def _require(broadcast: Broadcast, transition: Callable[..., Any], by: User | None) -> None:
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


def _transition(
    broadcast: Broadcast,
    transition: Callable[..., Any],
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


def _save(broadcast: Broadcast) -> None:
    broadcast.save()
    sync_schedule(broadcast=broadcast)
    transaction.on_commit(
        partial(logger.info, "broadcast_state", broadcast=broadcast.pk, state=broadcast.state)
    )


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
        broadcast = _lock(broadcast_id)
        _require(broadcast, broadcast.schedule, by)
        _check_ready(broadcast, scheduling=True)
        _transition(broadcast, broadcast.schedule, by)
        _save(broadcast)
    return broadcast


def unschedule_broadcast(*, broadcast_id: int, by: User | None = None) -> Broadcast:
    with transaction.atomic():
        broadcast = _lock(broadcast_id)
        _require(broadcast, broadcast.unschedule, by)
        _transition(broadcast, broadcast.unschedule, by)
        _save(broadcast)
    return broadcast


def start_broadcast(*, broadcast_id: int, by: User | None = None) -> Broadcast:
    """draft or scheduled -> sending, now: the planner and the senders start after commit."""
    with transaction.atomic():
        broadcast = _lock(broadcast_id)
        _require(broadcast, broadcast.start, by)
        if broadcast.kind != BroadcastKind.ONE_OFF:
            raise TransitionNotAllowed(
                _("A recurring or birthday broadcast sends on its schedule; schedule it.")
            )
        _check_ready(broadcast, scheduling=False)
        _transition(broadcast, broadcast.start, by)
        _save(broadcast)
        dispatch.kick_on_commit(broadcast)
    return broadcast


def launch_broadcast(*, broadcast_id: int) -> bool:
    """Beat's one-off launch: scheduled -> sending once `send_at` has come. Idempotent."""
    with transaction.atomic():
        broadcast = _lock(broadcast_id)
        if (
            broadcast.state != BroadcastState.SCHEDULED
            or broadcast.kind != BroadcastKind.ONE_OFF
            or broadcast.send_at is None
            or broadcast.send_at > timezone.now() + CLOCK_SKEW
        ):
            return False
        _transition(broadcast, broadcast.start, None, _("scheduled start"))
        _save(broadcast)
        dispatch.kick_on_commit(broadcast)
    return True


def pause_broadcast(*, broadcast_id: int, by: User | None = None, reason: str = "") -> Broadcast:
    """sending -> paused: senders stop within a flush and hand back what they had not sent."""
    with transaction.atomic():
        broadcast = _lock(broadcast_id)
        _require(broadcast, broadcast.pause, by)
        _transition(broadcast, broadcast.pause, by, reason, reason=reason)
        _save(broadcast)
    return broadcast


def pause_for_errors(*, broadcast_id: int, errors: int) -> bool:
    """The auto-pause: idempotent, and only while the error count is still over the limit."""
    with transaction.atomic():
        broadcast = _lock(broadcast_id)
        if (
            broadcast.state != BroadcastState.SENDING
            or broadcast.error_count < broadcast.pause_after_errors
        ):
            return False
        reason = REASON_TOO_MANY_ERRORS % {"errors": errors}
        _transition(broadcast, broadcast.pause, None, reason, reason=reason)
        _save(broadcast)
    logger.warning("broadcast_auto_paused", broadcast=broadcast_id, errors=errors)
    return True


def resume_broadcast(*, broadcast_id: int, by: User | None = None) -> Broadcast:
    """paused -> sending: the error count starts again, waiting retries become due now and the
    provider's circuit is closed (the operator says it is back)."""
    with transaction.atomic():
        broadcast = _lock(broadcast_id)
        _require(broadcast, broadcast.resume, by)
        _transition(broadcast, broadcast.resume, by)
        broadcast.error_count = 0
        _save(broadcast)
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
    from notifications.tasks import settle_cancelled_broadcast_task

    with transaction.atomic():
        broadcast = _lock(broadcast_id)
        _require(broadcast, broadcast.cancel, by)
        _transition(broadcast, broadcast.cancel, by, reason, reason=reason)
        _save(broadcast)
        cancelled = [broadcast.pk]
        for child in Broadcast.objects.select_for_update().filter(
            parent_id=broadcast.pk,
            state__in=[BroadcastState.SENDING, BroadcastState.PAUSED, BroadcastState.SCHEDULED],
        ):
            _transition(child, child.cancel, by, reason, reason=reason)
            _save(child)
            cancelled.append(child.pk)
        for pk in cancelled:
            transaction.on_commit(partial(settle_cancelled_broadcast_task.delay, pk))
    return broadcast


def fail_broadcast(*, broadcast_id: int, reason: str) -> bool:
    with transaction.atomic():
        broadcast = _lock(broadcast_id)
        if not can_proceed(broadcast.fail, check_conditions=False):
            return False
        _transition(broadcast, broadcast.fail, None, reason, reason=reason)
        _save(broadcast)
    logger.error("broadcast_failed", broadcast=broadcast_id, reason=reason)
    return True


def has_open_deliveries(*, broadcast_id: int) -> bool:
    return Delivery.objects.filter(
        broadcast_id=broadcast_id, status__in=[DeliveryStatus.QUEUED, DeliveryStatus.SENDING]
    ).exists()


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
        _transition(broadcast, broadcast.complete, None)
        _save(broadcast)
    return True


def settle_cancelled(*, broadcast_id: int) -> int:
    """Mark a cancelled broadcast's queued deliveries skipped(cancelled), a chunk at a time."""
    deliveries, broadcasts = Delivery._meta.db_table, Broadcast._meta.db_table
    total = 0
    while True:
        with statement_cursor() as cursor:
            cursor.execute(
                f"""
                WITH picked AS (
                  SELECT id FROM {deliveries}
                  WHERE broadcast_id = %s AND status = 'queued'
                    AND EXISTS (SELECT 1 FROM {broadcasts} WHERE id = %s AND state = 'cancelled')
                  ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED),
                done AS (
                  UPDATE {deliveries} d SET status = 'skipped', reason = %s, updated_at = now()
                  FROM picked WHERE d.id = picked.id RETURNING 1),
                counted AS (
                  UPDATE {broadcasts} b SET
                    skipped = b.skipped + (SELECT count(*) FROM done),
                    skipped_by_reason = jsonb_set(
                      b.skipped_by_reason, ARRAY[%s],
                      to_jsonb(coalesce((b.skipped_by_reason ->> %s)::bigint, 0)
                               + (SELECT count(*) FROM done)))
                  WHERE b.id = %s AND (SELECT count(*) FROM done) > 0 RETURNING 1)
                SELECT count(*) FROM done""",  # noqa: S608  (table names from the models, values bound)
                [
                    broadcast_id,
                    broadcast_id,
                    SETTLE_CHUNK,
                    SkipReason.CANCELLED.value,
                    SkipReason.CANCELLED.value,
                    SkipReason.CANCELLED.value,
                    broadcast_id,
                ],
            )
            done = cursor.fetchone()[0]
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
        parent = _lock(broadcast_id)
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
        _transition(child, child.start, None, _("occurrence of %(name)s") % {"name": parent.name})
        _save(child)
        dispatch.kick_on_commit(child)
    return child


# --- the sweeper -----------------------------------------------------------------------------


def _requeue_stale_claims(stale_before: dt.datetime) -> int:
    """Claims nobody renewed: their sender died. Back to queued (the attempt counts), or failed
    once the attempts are used up, through the same conditional flush as any outcome."""
    from notifications.services.sending import Outcome, flush
    from notifications.tasks import send_delivery_task

    stale = list(
        Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stale_before)
        .order_by("broadcast_id", "pk")
        .values_list("pk", "broadcast_id", "attempts")[:SETTLE_CHUNK]
    )
    if not stale:
        return 0
    logger.warning("stale_claims_requeued", count=len(stale))
    by_broadcast: dict[int | None, list[Outcome]] = {}
    for pk, broadcast_id, attempts in stale:
        exhausted = attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS
        by_broadcast.setdefault(broadcast_id, []).append(
            Outcome(
                pk,
                attempts,
                DeliveryStatus.FAILED if exhausted else DeliveryStatus.QUEUED,
                "retries_exhausted" if exhausted else "",
                "the sender stopped responding",
            )
        )
    for owner_id, outcomes in by_broadcast.items():
        flush(outcomes, broadcast_id=owner_id)
        if owner_id is None:
            for outcome in outcomes:
                if outcome.status == DeliveryStatus.QUEUED:
                    send_delivery_task.delay(outcome.delivery_id)
    return len(stale)


def sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """What beat runs every few seconds: requeue claims of dead senders, restart loops that
    lost their worker, launch one-offs whose beat task was missed, finish what is done."""
    from notifications.tasks import send_delivery_task

    now = now or timezone.now()
    stale_before = now - dt.timedelta(seconds=settings.NOTIFICATIONS_CLAIM_LEASE_SECONDS)
    report = {"requeued": 0, "launched": 0, "completed": 0, "kicked": 0, "settled": 0}
    report["requeued"] = _requeue_stale_claims(stale_before)
    # Transactional messages whose task was lost (a worker killed before it ran).
    for delivery_id in (
        Delivery.objects.filter(
            broadcast__isnull=True, status=DeliveryStatus.QUEUED, updated_at__lt=stale_before
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("pk", flat=True)[:SETTLE_CHUNK]
    ):
        send_delivery_task.delay(delivery_id)
    for broadcast_id in Broadcast.objects.filter(
        state=BroadcastState.SCHEDULED,
        kind=BroadcastKind.ONE_OFF,
        send_at__lte=now,
    ).values_list("pk", flat=True):
        if launch_broadcast(broadcast_id=broadcast_id):
            logger.warning("broadcast_launched_on_catch_up", broadcast=broadcast_id)
            report["launched"] += 1
    for broadcast_id, planned_at in Broadcast.objects.filter(
        state=BroadcastState.SENDING
    ).values_list("pk", "planned_at"):
        if planned_at is not None and complete_if_done(broadcast_id=broadcast_id):
            report["completed"] += 1
            continue
        if planned_at is None:
            dispatch.ensure_planner(broadcast_id)
        dispatch.ensure_senders(broadcast_id)
        report["kicked"] += 1
    for broadcast_id in (
        Broadcast.objects.filter(
            state=BroadcastState.CANCELLED, deliveries__status=DeliveryStatus.QUEUED
        )
        .values_list("pk", flat=True)
        .distinct()
    ):
        report["settled"] += settle_cancelled(broadcast_id=broadcast_id)
    return report


# --- one entry point for the admin's transition buttons -------------------------------------

TRANSITIONS: dict[str, Callable[..., Broadcast]] = {
    "schedule": schedule_broadcast,
    "unschedule": unschedule_broadcast,
    "start": start_broadcast,
    "pause": pause_broadcast,
    "resume": resume_broadcast,
    "cancel": cancel_broadcast,
}


def transition_broadcast(*, broadcast_id: int, name: str, by: User | None = None) -> Broadcast:
    try:
        service = TRANSITIONS[name]
    except KeyError:
        raise TransitionNotAllowed(_("Unknown transition %(name)s.") % {"name": name}) from None
    return service(broadcast_id=broadcast_id, by=by)

"""An activity's lifecycle: schedule, launch, pause, resume, end, archive.

Every service locks the activity row (`select_for_update`), runs the FSM transition (which
changes the row only), saves, re-derives the beat tasks in the same transaction and leaves
anything else for `transaction.on_commit`. Launch, end and the exhaustion guard are called by
beat, by the catch-up sweep and by workers, possibly twice for the same moment, so they are
idempotent: the transition is re-checked under the lock and a second call returns False.

`by` is the user acting (checked against the transition's `permission=`), or None for the
system (beat, the sweep, the guards, management commands).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django_fsm import can_proceed
from django_fsm_log.helpers import FSMLogDescriptor

from activities import enqueue
from activities.engine.errors import error_details
from activities.models import Activity, ActivityState, Benefit
from activities.models.activity import ExhaustionPolicy
from activities.services.approvals import approval_problem, ensure_approved
from activities.services.journeys import cancel_for_activity
from activities.services.readiness import check_activity
from activities.services.scheduling import sync_activity_schedule
from core.errors import InvalidConfiguration, TransitionNotAllowed
from core.timezones import describe

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser, AnonymousUser

    from activities.engine.context import RunContext

    User = AbstractUser | AnonymousUser

logger = structlog.get_logger(__name__)

# Stored in state_reason untranslated (the admin translates on display).
REASON_WINDOW_CLOSED = gettext_noop("window closed")
REASON_BUDGET_EXHAUSTED = gettext_noop("budget exhausted")
REASON_OUT_OF_STOCK = gettext_noop("all prizes out of stock")

# Beat and the workers run on different hosts; a launch or end that arrives this much early
# (clock skew) is still on time. The runner skips events outside the window regardless.
CLOCK_SKEW = dt.timedelta(seconds=5)


def _lock(activity_id: int) -> Activity:
    return Activity.objects.select_for_update().get(pk=activity_id)


def _authorize(activity: Activity, transition: Callable[..., Any], by: User | None) -> None:
    if by is None:
        return
    meta = transition._django_fsm  # type: ignore[attr-defined]
    if not meta.has_transition_perm(activity, activity.state, by):
        raise PermissionDenied(
            _("You are not allowed to %(action)s activities.") % {"action": transition.__name__}
        )


def _require(
    activity: Activity, transition: Callable[..., Any], by: User | None, *, allowed: str
) -> None:
    """Refuse a transition the current state does not allow, naming the states that would."""
    if not can_proceed(transition, check_conditions=False):
        raise TransitionNotAllowed(
            _("Activity %(code)s is %(state)s; only %(allowed)s activities can be %(done)s.")
            % {
                "code": activity.code,
                "state": activity.get_state_display(),
                "allowed": allowed,
                "done": _past_tense(transition.__name__),
            }
        )
    _authorize(activity, transition, by)


def _past_tense(verb: str) -> str:
    return {
        "schedule": _("scheduled"),
        "unschedule": _("unscheduled"),
        "pause": _("paused"),
        "resume": _("resumed"),
        "archive": _("archived"),
        "end": _("ended"),
        "launch": _("launched"),
    }[verb]


def _transition(
    activity: Activity,
    transition: Callable[..., Any],
    by: User | None,
    description: str = "",
    **kwargs: Any,
) -> None:
    """Run a transition with the user and reason recorded in django-fsm-log's audit trail."""
    with (
        FSMLogDescriptor(activity, "by", by if by is not None and by.is_authenticated else None),
        FSMLogDescriptor(activity, "description", description or None),
    ):
        transition(**kwargs)


def _save(activity: Activity, now: dt.datetime) -> None:
    activity.save()
    sync_activity_schedule(activity=activity, now=now)


def _log_on_commit(event: str, activity: Activity, **fields: Any) -> None:
    transaction.on_commit(
        partial(
            logger.info,
            event,
            activity=activity.code,
            activity_id=activity.pk,
            state=activity.state,
            **fields,
        )
    )


def _refresh(activity: Activity) -> None:
    activity.refresh_from_db()


def check_schedulable(*, activity: Activity, now: dt.datetime) -> None:
    """Raise InvalidConfiguration unless the activity can run (`check_activity`: window,
    timezone, chains, benefits) and its window is not over yet."""
    problems = error_details(check_activity(activity=activity))
    if not problems and activity.ends_at is not None and activity.ends_at <= now:
        problems.append(
            {
                "path": "ends_at",
                "message": _("The window is over: it ended at %(end)s.")
                % {"end": describe(activity.ends_at, activity.timezone)},
                "code": "window_over",
            }
        )
    if problems:
        raise InvalidConfiguration(
            _("Activity %(code)s cannot be scheduled: %(problems)s")
            % {"code": activity.code, "problems": " ".join(p["message"] for p in problems)},
            details=problems,
        )


def schedule_activity(*, activity: Activity, by: User | None = None) -> Activity:
    """draft -> scheduled, with beat tasks for launch and end; launched at once when the window
    is already open. Raises InvalidConfiguration (window or configuration) or
    TransitionNotAllowed."""
    with transaction.atomic():
        locked = _lock(activity.pk)
        _require(locked, locked.schedule, by, allowed=_("draft"))
        ensure_approved(activity=locked)
        now = timezone.now()
        check_schedulable(activity=locked, now=now)
        _transition(locked, locked.schedule, by)
        launched = locked.starts_at <= now  # type: ignore[operator]
        if launched:
            _transition(locked, locked.launch, by, _("the window was already open"))
        _save(locked, now)
        _log_on_commit(
            "activity_scheduled",
            locked,
            starts_at=locked.starts_at.isoformat(),  # type: ignore[union-attr]
            ends_at=locked.ends_at.isoformat(),  # type: ignore[union-attr]
            launched_now=launched,
        )
    _refresh(activity)
    return locked


def unschedule_activity(*, activity: Activity, by: User | None = None) -> Activity:
    """scheduled -> draft; the beat tasks are removed."""
    with transaction.atomic():
        locked = _lock(activity.pk)
        _require(locked, locked.unschedule, by, allowed=_("scheduled"))
        _transition(locked, locked.unschedule, by)
        _save(locked, timezone.now())
        _log_on_commit("activity_unscheduled", locked)
    _refresh(activity)
    return locked


def reschedule_activity(
    *,
    activity: Activity,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    by: User | None = None,
) -> Activity:
    """Move the window (UTC instants) and the beat tasks with it.

    A draft just takes the new window. A scheduled activity must keep a window that is not
    over (and launches at once if the new start has passed). A running or paused activity has
    started, so only its end can move. Ended and archived activities keep their window.
    """
    with transaction.atomic():
        locked = _lock(activity.pk)
        now = timezone.now()
        if locked.state in (ActivityState.ENDED, ActivityState.ARCHIVED):
            raise TransitionNotAllowed(
                _("Activity %(code)s is %(state)s; its window can no longer change.")
                % {"code": locked.code, "state": locked.get_state_display()}
            )
        if (
            locked.state != ActivityState.DRAFT
            and by is not None
            and not by.has_perm("activities.schedule_activity")
        ):
            raise PermissionDenied(_("You are not allowed to reschedule activities."))
        if (
            locked.state in (ActivityState.RUNNING, ActivityState.PAUSED)
            and starts_at != locked.starts_at
        ):
            raise TransitionNotAllowed(
                _("Activity %(code)s has started; only its end can move.") % {"code": locked.code}
            )
        locked.starts_at = starts_at
        locked.ends_at = ends_at
        if locked.state != ActivityState.DRAFT:
            check_schedulable(activity=locked, now=now)
        if locked.state == ActivityState.SCHEDULED and starts_at <= now:
            ensure_approved(activity=locked)
            _transition(locked, locked.launch, by, _("the window was already open"))
        locked.config_version += 1
        _save(locked, now)
        _log_on_commit(
            "activity_rescheduled",
            locked,
            starts_at=starts_at.isoformat(),
            ends_at=ends_at.isoformat(),
        )
    _refresh(activity)
    return locked


def launch_activity(*, activity_id: int) -> bool:
    """scheduled -> running once the start has come and the window is not over.

    Idempotent: False (and nothing changed) when the activity is not scheduled, not due yet
    (a stale beat task after a reschedule) or its window is already over (ending it is the end
    task's and the sweep's work).
    """
    with transaction.atomic():
        activity = _lock(activity_id)
        now = timezone.now()
        if (
            activity.state != ActivityState.SCHEDULED
            or activity.starts_at is None
            or activity.starts_at > now + CLOCK_SKEW
            or (activity.ends_at is not None and activity.ends_at <= now)
        ):
            return False
        if (problem := approval_problem(activity=activity)) is not None:
            # Changed after approval while it waited for its start: back to the operators.
            _transition(activity, activity.unschedule, None, problem)
            activity.state_reason = problem[: Activity._meta.get_field("state_reason").max_length]
            _save(activity, now)
            _log_on_commit("activity_launch_refused", activity, reason=problem)
            return False
        _transition(activity, activity.launch, None)
        _save(activity, now)
        _log_on_commit(
            "activity_launched",
            activity,
            due_at=activity.starts_at.isoformat(),
            late_seconds=round((now - activity.starts_at).total_seconds(), 3),
        )
    return True


def pause_activity(*, activity: Activity, by: User | None = None, reason: str = "") -> Activity:
    """running -> paused; events are skipped until it resumes. `reason` is shown in the admin."""
    with transaction.atomic():
        locked = _lock(activity.pk)
        _require(locked, locked.pause, by, allowed=_("running"))
        _transition(locked, locked.pause, by, reason, reason=reason)
        _save(locked, timezone.now())
        _log_on_commit("activity_paused", locked, reason=reason)
    _refresh(activity)
    return locked


def resume_activity(*, activity: Activity, by: User | None = None) -> Activity:
    """paused -> running, unless the window is over or the budget or stock is still used up."""
    with transaction.atomic():
        locked = _lock(activity.pk)
        _require(locked, locked.resume, by, allowed=_("paused"))
        now = timezone.now()
        if locked.ends_at is not None and locked.ends_at <= now:
            raise TransitionNotAllowed(
                _("Activity %(code)s cannot resume: its window ended at %(end)s.")
                % {"code": locked.code, "end": describe(locked.ends_at, locked.timezone)}
            )
        exhausted = exhaustion_reason(activity=locked)
        if exhausted:
            raise TransitionNotAllowed(
                _("Activity %(code)s cannot resume: %(reason)s. Raise it first.")
                % {"code": locked.code, "reason": _(exhausted)}
            )
        _transition(locked, locked.resume, by)
        _save(locked, now)
        _log_on_commit("activity_resumed", locked)
    _refresh(activity)
    return locked


def end_activity(
    *, activity_id: int, reason: str = "", by: User | None = None, if_due: bool = False
) -> bool:
    """scheduled, running or paused -> ended; the beat tasks are removed.

    Idempotent: False when the activity has already ended (or is a draft or archived). With
    `if_due` (beat's end task, the sweep) it ends only once `ends_at` has come, so a stale end
    task fired after the end was moved later changes nothing.
    """
    with transaction.atomic():
        activity = _lock(activity_id)
        now = timezone.now()
        if not can_proceed(activity.end, check_conditions=False):
            return False
        if if_due and (activity.ends_at is None or activity.ends_at > now + CLOCK_SKEW):
            return False
        _authorize(activity, activity.end, by)
        _transition(activity, activity.end, by, reason, reason=reason)
        _save(activity, now)
        cancel_for_activity(activity_id=activity.pk)
        _log_on_commit("activity_ended", activity, reason=reason)
    return True


def archive_activity(*, activity: Activity, by: User | None = None) -> Activity:
    """draft or ended -> archived."""
    with transaction.atomic():
        locked = _lock(activity.pk)
        _require(locked, locked.archive, by, allowed=_("draft or ended"))
        _transition(locked, locked.archive, by)
        _save(locked, timezone.now())
        _log_on_commit("activity_archived", locked)
    _refresh(activity)
    return locked


# --- Guards: budget and stock ----------------------------------------------------------------


def exhaustion_reason(*, activity: Activity) -> str:
    """Why nothing more can be granted ("budget exhausted", "all prizes out of stock"), or "".

    The budget is used up when what remains cannot pay for one unit of the cheapest benefit
    that costs money; the stock when every benefit with a limited stock has none left.
    """
    if activity.budget_total is not None and activity.budget_remaining is not None:
        cheapest = Benefit.objects.filter(activity_id=activity.pk, value__gt=0).aggregate(
            cheapest=Min("value")
        )["cheapest"]
        if activity.budget_remaining <= 0 or (
            cheapest is not None and activity.budget_remaining < cheapest
        ):
            return REASON_BUDGET_EXHAUSTED
    limited = Benefit.objects.filter(activity_id=activity.pk, stock_total__isnull=False)
    if limited.exists() and not limited.filter(stock_remaining__gt=0).exists():
        return REASON_OUT_OF_STOCK
    return ""


def exhaust_activity(*, activity_id: int) -> bool:
    """Pause or end a running activity whose budget or limited stock is used up, as its
    `on_exhausted` says, with the reason in `state_reason`.

    Re-checked under the lock: False when the activity is not running (already paused, a second
    delivery) or is no longer exhausted (the operator topped it up meanwhile).
    """
    with transaction.atomic():
        activity = _lock(activity_id)
        if activity.state != ActivityState.RUNNING:
            return False
        reason = exhaustion_reason(activity=activity)
        if not reason:
            return False
        if activity.on_exhausted == ExhaustionPolicy.END:
            _transition(activity, activity.end, None, reason, reason=reason)
            cancel_for_activity(activity_id=activity.pk)
        else:
            _transition(activity, activity.pause, None, reason, reason=reason)
        _save(activity, timezone.now())
        _log_on_commit("activity_exhausted", activity, reason=reason)
    return True


def watch_stock(*, ctx: RunContext, remaining: int) -> None:
    """Called by the grant that just took stock, with what is left: when it took the last
    unit, check (after commit) whether every limited benefit of the activity is out. A check
    the broker loses is the minute sweep's (`catch_up`)."""
    if remaining == 0:
        ctx.on_commit(partial(enqueue.exhaust_activity, activity_id=ctx.activity.id))


def watch_budget(*, ctx: RunContext, remaining: Decimal) -> None:
    """Called by the grant that just spent budget, with what is left: when it cannot pay for
    the cheapest benefit, pause or end the activity (after commit; or the minute sweep)."""
    prices = [b.value for b in ctx.activity.benefits.values() if b.value and b.value > 0]
    if remaining <= 0 or (prices and remaining < min(prices)):
        ctx.on_commit(partial(enqueue.exhaust_activity, activity_id=ctx.activity.id))


# --- Catch-up ---------------------------------------------------------------------------------


def catch_up(*, now: dt.datetime | None = None) -> dict[str, list[str]]:
    """Launch, end and stop what beat should have but did not (it was down, or lost a task).

    Ends first, so an activity whose whole window passed while beat was down ends without
    ever running. Each activity goes through the same idempotent service as beat's task, so a
    sweep racing beat changes nothing twice. Logs every activity it moves.
    """
    now = now or timezone.now()
    done: dict[str, list[str]] = {"ended": [], "launched": [], "exhausted": []}
    overdue_ends = Activity.objects.filter(
        state__in=[ActivityState.SCHEDULED, ActivityState.RUNNING, ActivityState.PAUSED],
        ends_at__lte=now,
    ).values_list("pk", "code", "ends_at")
    for activity_id, code, ends_at in overdue_ends:
        if end_activity(activity_id=activity_id, reason=REASON_WINDOW_CLOSED, if_due=True):
            done["ended"].append(code)
            logger.warning("activity_end_caught_up", activity=code, due_at=ends_at.isoformat())
    overdue_launches = Activity.objects.filter(
        state=ActivityState.SCHEDULED, starts_at__lte=now, ends_at__gt=now
    ).values_list("pk", "code", "starts_at")
    for activity_id, code, starts_at in overdue_launches:
        if launch_activity(activity_id=activity_id):
            done["launched"].append(code)
            logger.warning("activity_launch_caught_up", activity=code, due_at=starts_at.isoformat())
    # Two runs taking the last units of two different benefits at once each see the other's
    # stock as not yet taken; the sweep settles it within a minute.
    # Checked without the lock first: the lock would queue behind every grant of the activity.
    candidates = (
        Activity.objects.filter(state=ActivityState.RUNNING)
        .filter(Q(budget_total__isnull=False) | Q(benefits__stock_total__isnull=False))
        .distinct()
        .only("pk", "code", "budget_total", "budget_remaining")
    )
    for candidate in candidates:
        if exhaustion_reason(activity=candidate) and exhaust_activity(activity_id=candidate.pk):
            done["exhausted"].append(candidate.code)
            logger.warning("activity_exhaustion_caught_up", activity=candidate.code)
    return done

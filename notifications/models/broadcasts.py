"""Broadcasts: one message to a segment, and the state machine it goes through.

Transitions only change the row; `notifications.services.broadcasts` owns their side effects
(beat schedules, planner and sender tasks).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from notifications.models.templates import NotificationTemplate


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(value)s is not a timezone name such as Asia/Shanghai."),
            params={"value": value},
            code="invalid_timezone",
        ) from None


class BroadcastKind(models.TextChoices):
    ONE_OFF = "one_off", _("once")
    RECURRING = "recurring", _("recurring (crontab)")
    BIRTHDAY = "birthday", _("birthday greeting")


class BroadcastState(models.TextChoices):
    DRAFT = "draft", _("draft")
    SCHEDULED = "scheduled", _("scheduled")
    SENDING = "sending", _("sending")
    PAUSED = "paused", _("paused")
    COMPLETED = "completed", _("completed")
    CANCELLED = "cancelled", _("cancelled")
    FAILED = "failed", _("failed")


def _default_cap() -> int | None:
    return settings.NOTIFICATIONS_FREQUENCY_CAP


def _default_window() -> dt.timedelta:
    return dt.timedelta(hours=settings.NOTIFICATIONS_FREQUENCY_WINDOW_HOURS)


def _default_pause_after() -> int:
    return settings.NOTIFICATIONS_PAUSE_AFTER_ERRORS


def _default_batch_size() -> int:
    return settings.NOTIFICATIONS_BATCH_SIZE


def _default_timezone() -> str:
    return settings.GAMBIT_DEFAULT_TIMEZONE


def is_one_off(broadcast: Broadcast) -> bool:
    return broadcast.kind == BroadcastKind.ONE_OFF


def can_be_scheduled(broadcast: Broadcast) -> bool:
    if broadcast.kind == BroadcastKind.ONE_OFF:
        return broadcast.send_at is not None and broadcast.send_at > timezone.now()
    return True


class Broadcast(ConcurrentTransitionMixin, FSMModelMixin, models.Model):
    """One message to a segment: planned into Deliveries in pages, then sent in batches.

    A recurring or birthday broadcast is a standing order: while scheduled, each firing of its
    crontab creates an *occurrence* (a one-off child broadcast with its own deliveries).
    """

    name = models.CharField(_("name"), max_length=200)
    template = models.ForeignKey(
        NotificationTemplate,
        on_delete=models.PROTECT,
        related_name="broadcasts",
        verbose_name=_("template"),
    )
    segment = models.ForeignKey(
        "segments.Segment",
        on_delete=models.PROTECT,
        related_name="broadcasts",
        verbose_name=_("segment"),
    )
    kind = models.CharField(
        _("kind"), max_length=16, choices=BroadcastKind.choices, default=BroadcastKind.ONE_OFF
    )
    state = FSMField(
        _("state"), default=BroadcastState.DRAFT, choices=BroadcastState.choices, protected=True
    )
    state_reason = models.CharField(_("state reason"), max_length=300, blank=True)
    timezone = models.CharField(
        _("timezone"),
        max_length=64,
        default=_default_timezone,
        validators=[validate_timezone],
        help_text=_(
            "The crontab runs in this zone; customers with no valid timezone of their own are "
            "taken to live here (quiet hours, birthdays)."
        ),
    )
    send_at = models.DateTimeField(
        _("send at"), null=True, blank=True, help_text=_("Once: when to start sending.")
    )
    cron = models.CharField(
        _("crontab"),
        max_length=100,
        blank=True,
        help_text=_("Recurring: minute hour day-of-month month day-of-week, e.g. '0 9 * * mon'."),
    )
    birthday_hour = models.PositiveSmallIntegerField(
        _("birthday hour"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(23)],
        help_text=_(
            "Birthday: the local hour (in each customer's own timezone) the greeting goes out. "
            "29 February birthdays are greeted on 28 February in other years."
        ),
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="occurrences",
        verbose_name=_("recurring broadcast"),
    )
    occurrence = models.DateTimeField(_("occurrence"), null=True, blank=True)
    # A birthday occurrence sends to customers whose local send instant is in
    # (window_start, occurrence].
    window_start = models.DateTimeField(_("window start"), null=True, blank=True)
    # A standing broadcast's latest firing: the next birthday window starts here.
    last_occurrence = models.DateTimeField(_("last fired at"), null=True, blank=True)
    # Policy
    frequency_cap = models.PositiveIntegerField(
        _("frequency cap"),
        null=True,
        blank=True,
        default=_default_cap,
        help_text=_(
            "At most this many marketing messages per customer within the window, across all "
            "broadcasts; empty for no cap."
        ),
    )
    frequency_window = models.DurationField(_("frequency window"), default=_default_window)
    quiet_start = models.TimeField(
        _("quiet hours start"),
        null=True,
        blank=True,
        help_text=_("Local time in the customer's timezone, e.g. 22:00."),
    )
    quiet_end = models.TimeField(_("quiet hours end"), null=True, blank=True)
    rate_limit = models.PositiveIntegerField(
        _("rate limit (messages/second)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "This broadcast's own ceiling, shared by all workers; the channel's applies too."
        ),
    )
    batch_size = models.PositiveIntegerField(
        _("batch size"),
        default=_default_batch_size,
        validators=[MinValueValidator(1), MaxValueValidator(5000)],
    )
    pause_after_errors = models.PositiveIntegerField(
        _("pause after errors"),
        default=_default_pause_after,
        validators=[MinValueValidator(1)],
        help_text=_("Provider errors (outages, timeouts) after which sending pauses itself."),
    )
    # Progress (changed only by conditional UPDATEs in SQL)
    planned = models.BigIntegerField(_("planned"), default=0)
    sent = models.BigIntegerField(_("sent"), default=0)
    failed = models.BigIntegerField(_("failed"), default=0)
    skipped = models.BigIntegerField(_("skipped"), default=0)
    skipped_by_reason = models.JSONField(_("skipped by reason"), default=dict, blank=True)
    error_count = models.PositiveIntegerField(_("provider errors since start/resume"), default=0)
    plan_cursor = models.BigIntegerField(_("planner cursor"), default=0, editable=False)
    planned_at = models.DateTimeField(_("planning finished at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    # Start of the current sending period (start or resume): only errors of messages claimed
    # since then count toward the auto-pause.
    sending_since = models.DateTimeField(_("sending since"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")
        indexes = [models.Index(fields=["state"], name="broadcast_state_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "occurrence"],
                condition=models.Q(parent__isnull=False),
                name="broadcast_one_occurrence",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="birthday", birthday_hour__isnull=False)
                | ~models.Q(kind="birthday"),
                name="broadcast_birthday_hour",
            ),
        ]
        permissions = [("send_broadcast", _("Can start, pause, resume and cancel broadcasts"))]

    def __str__(self) -> str:
        return self.name

    @property
    def is_standing(self) -> bool:
        return self.kind in (BroadcastKind.RECURRING, BroadcastKind.BIRTHDAY)

    @property
    def outstanding(self) -> int:
        return max(self.planned - self.sent - self.failed - self.skipped, 0)

    @transition(
        field=state,
        source=BroadcastState.DRAFT,
        target=BroadcastState.SCHEDULED,
        conditions=[can_be_scheduled],
        permission="notifications.send_broadcast",
        custom={"label": _("Schedule")},
    )
    def schedule(self) -> None:
        self.state_reason = ""

    @transition(
        field=state,
        source=BroadcastState.SCHEDULED,
        target=BroadcastState.DRAFT,
        permission="notifications.send_broadcast",
        custom={"label": _("Unschedule")},
    )
    def unschedule(self) -> None:
        self.state_reason = ""

    @transition(
        field=state,
        source=[BroadcastState.DRAFT, BroadcastState.SCHEDULED],
        target=BroadcastState.SENDING,
        conditions=[is_one_off],
        permission="notifications.send_broadcast",
        custom={"label": _("Send now")},
    )
    def start(self) -> None:
        self.state_reason = ""
        self.started_at = self.sending_since = timezone.now()

    @transition(
        field=state,
        source=BroadcastState.SENDING,
        target=BroadcastState.PAUSED,
        permission="notifications.send_broadcast",
        custom={"label": _("Pause")},
    )
    def pause(self, reason: str = "") -> None:
        self.state_reason = reason

    @transition(
        field=state,
        source=BroadcastState.PAUSED,
        target=BroadcastState.SENDING,
        permission="notifications.send_broadcast",
        custom={"label": _("Resume")},
    )
    def resume(self) -> None:
        self.state_reason = ""
        self.sending_since = timezone.now()

    @transition(
        field=state,
        source=BroadcastState.SENDING,
        target=BroadcastState.COMPLETED,
        custom={"admin": False},
    )
    def complete(self) -> None:
        self.finished_at = timezone.now()

    @transition(
        field=state,
        source=[
            BroadcastState.DRAFT,
            BroadcastState.SCHEDULED,
            BroadcastState.SENDING,
            BroadcastState.PAUSED,
        ],
        target=BroadcastState.CANCELLED,
        permission="notifications.send_broadcast",
        custom={"label": _("Cancel")},
    )
    def cancel(self, reason: str = "") -> None:
        self.state_reason = reason
        self.finished_at = timezone.now()

    @transition(
        field=state,
        source=[BroadcastState.SCHEDULED, BroadcastState.SENDING, BroadcastState.PAUSED],
        target=BroadcastState.FAILED,
        custom={"admin": False},
    )
    def fail(self, reason: str = "") -> None:
        self.state_reason = reason
        self.finished_at = timezone.now()

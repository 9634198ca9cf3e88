"""Notification templates, broadcasts and their deliveries.

Transitions only change the row; `notifications.services.broadcasts` owns their side effects
(beat schedules, planner and sender tasks).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from notifications import rendering

code_validator = RegexValidator(
    r"^[a-z0-9]+(-[a-z0-9]+)*$", _("Use lower-case letters, digits and hyphens.")
)


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(value)s is not a timezone name such as Asia/Shanghai."),
            params={"value": value},
            code="invalid_timezone",
        ) from None


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("email")
    WECHAT = "wechat", _("WeChat subscription message")
    SMS = "sms", _("SMS")
    WEBHOOK = "webhook", _("webhook")


class NotificationTemplate(models.Model):
    """What a message says, per channel, with placeholders such as {{ customer.name }}."""

    code = models.CharField(_("code"), max_length=100, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    channel = models.CharField(_("channel"), max_length=16, choices=ChannelKind.choices)
    subject = models.CharField(
        _("subject"), max_length=300, blank=True, help_text=_("Email subject; a template.")
    )
    body = models.TextField(
        _("body"),
        blank=True,
        help_text=_(
            "The message text, with placeholders such as {{ customer.name }}. A placeholder "
            "without a value fails that one message; use {{ customer.name|default('friend') }} "
            "for a fallback."
        ),
    )
    fields = models.JSONField(
        _("fields"),
        default=dict,
        blank=True,
        help_text=_(
            "WeChat: the subscription message's data keys, e.g. "
            '{"thing1": "{{ customer.name }}", "time2": "{{ event.when }}"}. Webhook: extra '
            "fields sent with the body. Each value is a template."
        ),
    )
    provider_template_id = models.CharField(
        _("provider template id"),
        max_length=128,
        blank=True,
        help_text=_("WeChat template_id, or the SMS provider's template code."),
    )
    link = models.CharField(
        _("link"),
        max_length=500,
        blank=True,
        help_text=_("WeChat: the mini-program page the message opens."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("notification template")
        verbose_name_plural = _("notification templates")

    def __str__(self) -> str:
        return self.name or self.code

    def save(self, *args, **kwargs) -> None:
        # No path around the check: a template with an unknown placeholder is never stored.
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if problems := self.problems():
            raise ValidationError(problems)

    def sources(self) -> dict[str, str]:
        """Every template text, by the form field it lives in."""
        out = {"subject": self.subject, "body": self.body}
        if isinstance(self.fields, dict):
            out.update({f"fields.{key}": str(value) for key, value in self.fields.items()})
        return out

    def problems(self) -> dict[str, list[str]]:
        """Every reason this template cannot be saved, by field."""
        found: dict[str, list[str]] = {}
        for name, source in self.sources().items():
            for problem in rendering.check_source(source, transactional=True):
                found.setdefault(name.split(".", 1)[0], []).append(
                    f"{name}: {problem}" if name.startswith("fields.") else str(problem)
                )
        if not isinstance(self.fields, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in self.fields.items()
        ):
            found.setdefault("fields", []).append(
                str(_("Fields must be an object of names to template strings."))
            )
        required = {
            ChannelKind.EMAIL: ("subject", "body"),
            ChannelKind.SMS: ("body",),
            ChannelKind.WEBHOOK: ("body",),
            ChannelKind.WECHAT: ("provider_template_id", "fields"),
        }.get(self.channel, ())
        for name in required:
            if not getattr(self, name):
                found.setdefault(name, []).append(
                    str(_("The %(channel)s channel needs this.") % {"channel": self.channel})
                )
        return found


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


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("skipped")


class SkipReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
    NO_CONSENT = "no_consent", _("no consent for this channel")
    NO_ADDRESS = "no_address", _("no address for this channel")
    QUIET_HOURS = "quiet_hours", _("quiet hours in the customer's timezone")
    FREQUENCY_CAP = "frequency_cap", _("frequency cap reached")
    DUPLICATE_ADDRESS = "duplicate_address", _("another customer has the same address")
    NO_BIRTHDAY = "no_birthday", _("no birthday on record")
    INVALID_BIRTHDAY = "invalid_birthday", _("birthday on record is not a valid date")
    NOT_SUBSCRIBED = "not_subscribed", _("refused or not subscribed (WeChat)")
    CANCELLED = "cancelled", _("broadcast cancelled")


class Delivery(models.Model):
    """One message to one customer: at most one per (broadcast, customer).

    `attempts` doubles as the claim token: a sender marks only rows still `sending` with the
    attempt number it claimed, so a stale sender can never overwrite a newer attempt.
    """

    broadcast = models.ForeignKey(
        Broadcast,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("broadcast"),
        db_index=False,
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("customer"),
        db_index=False,
    )
    channel = models.CharField(_("channel"), max_length=16, choices=ChannelKind.choices)
    address = models.CharField(_("address"), max_length=254, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    reason = models.CharField(_("reason"), max_length=64, blank=True)
    error = models.TextField(_("last error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=128, blank=True)
    # Transactional messages (from the `notify` processor): rendered when the run commits.
    source_key = models.CharField(_("source"), max_length=200, blank=True)
    rendered = models.JSONField(_("rendered message"), null=True, blank=True)
    counts_toward_cap = models.BooleanField(_("counts toward the frequency cap"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["broadcast", "customer"],
                condition=models.Q(broadcast__isnull=False),
                name="delivery_one_per_customer",
            ),
            models.UniqueConstraint(
                fields=["source_key"],
                condition=models.Q(broadcast__isnull=True),
                name="delivery_one_per_source",
            ),
        ]
        indexes = [
            # Claiming (the next queued rows of a broadcast in id order), recording outcomes
            # (exact lookups by broadcast and id) and the completion check (is anything of
            # this broadcast still open?), in one index. Status is not a key column on purpose:
            # as one, PostgreSQL would read every in-flight row to find a hundred of them.
            models.Index(
                fields=["broadcast", "id"],
                condition=models.Q(status__in=["queued", "sending"]),
                name="delivery_open_idx",
            ),
            # One message per address per broadcast.
            models.Index(
                fields=["address", "broadcast"],
                condition=~models.Q(status="skipped"),
                name="delivery_address_idx",
            ),
            # The frequency cap (and the customer foreign key).
            models.Index(fields=["customer", "created_at"], name="delivery_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} -> {self.customer_id} ({self.status})"

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

from .template import code_validator


class ActivityState(models.TextChoices):
    DRAFT = "draft", _("draft")
    SCHEDULED = "scheduled", _("scheduled")
    RUNNING = "running", _("running")
    PAUSED = "paused", _("paused")
    ENDED = "ended", _("ended")
    ARCHIVED = "archived", _("archived")


class ExhaustionPolicy(models.TextChoices):
    PAUSE = "pause", _("pause the activity")
    END = "end", _("end the activity")


def window_is_valid(activity: "Activity") -> bool:
    return (
        activity.starts_at is not None
        and activity.ends_at is not None
        and activity.starts_at < activity.ends_at
    )


def window_not_over(activity: "Activity") -> bool:
    return activity.ends_at is not None and activity.ends_at > timezone.now()


class Activity(ConcurrentTransitionMixin, FSMModelMixin, models.Model):
    """One marketing campaign: a template, a window, benefits and a lifecycle.

    Transitions only change the row; `activities.services.lifecycle` owns their side effects.
    """

    code = models.CharField(_("code"), max_length=100, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    template = models.ForeignKey(
        "activities.StrategyTemplate",
        on_delete=models.PROTECT,
        related_name="activities",
        verbose_name=_("strategy template"),
    )
    timezone = models.CharField(
        _("timezone"), max_length=64, default=settings.GAMBIT_DEFAULT_TIMEZONE
    )
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    segment = models.ForeignKey(
        "segments.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="activities",
        verbose_name=_("audience segment"),
        help_text=_("Only customers in this segment take part; others are rejected."),
    )
    budget_total = models.DecimalField(
        _("budget"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    budget_remaining = models.DecimalField(
        _("budget remaining"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    on_exhausted = models.CharField(
        _("when budget or stock runs out"),
        max_length=8,
        choices=ExhaustionPolicy.choices,
        default=ExhaustionPolicy.PAUSE,
    )
    coupons_follow_orders = models.BooleanField(
        _("coupons follow orders"),
        default=True,
        help_text=_(
            "A coupon of this activity named on an order is redeemed when the order is paid "
            "and released when it is cancelled."
        ),
    )
    state = FSMField(
        _("state"), default=ActivityState.DRAFT, choices=ActivityState.choices, protected=True
    )
    state_reason = models.CharField(_("state reason"), max_length=200, blank=True)
    # Bumped by every configuration edit of the activity itself (benefits, window, budget).
    config_version = models.PositiveIntegerField(_("configuration version"), default=1)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        indexes = [models.Index(fields=["state"], name="activity_state_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(budget_remaining__gte=0) | models.Q(budget_remaining=None),
                name="activity_budget_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(starts_at__lt=models.F("ends_at"))
                | models.Q(starts_at=None)
                | models.Q(ends_at=None),
                name="activity_window_ordered",
            ),
        ]
        permissions = [
            ("schedule_activity", _("Can schedule and launch activities")),
            ("pause_activity", _("Can pause, resume and end activities")),
        ]

    def __str__(self) -> str:
        return self.name

    @transition(
        field=state,
        source=ActivityState.DRAFT,
        target=ActivityState.SCHEDULED,
        conditions=[window_is_valid, window_not_over],
        permission="activities.schedule_activity",
    )
    def schedule(self) -> None:
        self.state_reason = ""

    @transition(
        field=state,
        source=ActivityState.SCHEDULED,
        target=ActivityState.DRAFT,
        permission="activities.schedule_activity",
    )
    def unschedule(self) -> None:
        self.state_reason = ""

    @transition(
        field=state,
        source=ActivityState.SCHEDULED,
        target=ActivityState.RUNNING,
        conditions=[window_not_over],
        permission="activities.schedule_activity",
    )
    def launch(self) -> None:
        self.state_reason = ""

    @transition(
        field=state,
        source=ActivityState.RUNNING,
        target=ActivityState.PAUSED,
        permission="activities.pause_activity",
    )
    def pause(self, reason: str = "") -> None:
        self.state_reason = reason

    @transition(
        field=state,
        source=ActivityState.PAUSED,
        target=ActivityState.RUNNING,
        conditions=[window_not_over],
        permission="activities.pause_activity",
    )
    def resume(self) -> None:
        self.state_reason = ""

    @transition(
        field=state,
        source=[ActivityState.SCHEDULED, ActivityState.RUNNING, ActivityState.PAUSED],
        target=ActivityState.ENDED,
        permission="activities.pause_activity",
    )
    def end(self, reason: str = "") -> None:
        self.state_reason = reason

    @transition(
        field=state,
        source=[ActivityState.DRAFT, ActivityState.ENDED],
        target=ActivityState.ARCHIVED,
        permission="activities.pause_activity",
    )
    def archive(self) -> None:
        pass

"""Journeys: chain runs that wait (a duration, a local time, an event with a timeout).

A run that reaches a wait step ends its transaction with outcome `waiting` and one
WaitingRun row: when it is due, what it waits for, the values its later steps need. The row
names the JourneyVersion it started on, a copy of the chain's steps at that template version,
so an edit made while the run waits changes nothing for it.
"""

from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _


class JourneyVersion(models.Model):
    """The steps of one chain at one template version, as the runs that wait on it saw them."""

    template = models.ForeignKey(
        "activities.StrategyTemplate", on_delete=models.CASCADE, related_name="+"
    )
    channel = models.ForeignKey("activities.Channel", on_delete=models.PROTECT, related_name="+")
    template_version = models.PositiveIntegerField()
    requires_lock = models.BooleanField(default=True)
    # [{"processor", "config", "when", "on_error"}, ...] in chain order.
    steps = models.JSONField(default=list)
    # Channels whose events end a waiting run early (the chain's exit rules).
    exit_channels = ArrayField(models.IntegerField(), default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("journey version")
        verbose_name_plural = _("journey versions")
        constraints = [
            models.UniqueConstraint(
                fields=["template", "channel", "template_version"], name="journey_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.template_id}/{self.channel_id} v{self.template_version}"


class WaitState(models.TextChoices):
    WAITING = "waiting", _("waiting")
    RESUMED = "resumed", _("resumed")
    CANCELLED = "cancelled", _("cancelled")


class WaitingRun(models.Model):
    """A chain run paused at a wait step, resumed exactly once (or cancelled).

    `state` moves from waiting only by a conditional UPDATE in the transaction that runs the
    remaining steps, so a resume that a killed worker left half-done rolls back whole and the
    next sweep takes the row again.
    """

    run = models.OneToOneField(
        "activities.ChainRun",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="waiting",
        verbose_name=_("run"),
    )
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="waiting_runs",
        db_index=False,
        verbose_name=_("activity"),
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.CASCADE,
        related_name="waiting_runs",
        db_index=False,
        verbose_name=_("customer"),
    )
    journey = models.ForeignKey(
        JourneyVersion, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # Index of the wait step in the journey's steps; the run goes on with the next one.
    step = models.PositiveSmallIntegerField(_("waiting at step"))
    due_at = models.DateTimeField(_("resumes at"))
    channel = models.ForeignKey(
        "activities.Channel",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("waiting for event"),
    )
    # Channel ids whose events concern this run: the awaited one and the chain's exits.
    watching = ArrayField(models.IntegerField(), default=list)
    # Payload values the awaited event must repeat (the same order, ...).
    match = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    vars = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    state = models.CharField(
        _("state"), max_length=12, choices=WaitState.choices, default=WaitState.WAITING
    )
    reason = models.CharField(_("reason"), max_length=100, blank=True)
    # The awaited event, when it came while the activity was paused (the run resumes later).
    arrived_event = models.ForeignKey(
        "activities.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(_("waiting since"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("waiting run")
        verbose_name_plural = _("waiting runs")
        indexes = [
            models.Index(
                fields=["due_at"], condition=models.Q(state="waiting"), name="wait_due_idx"
            ),
            models.Index(
                fields=["customer"], condition=models.Q(state="waiting"), name="wait_customer_idx"
            ),
            models.Index(
                fields=["activity", "step"],
                condition=models.Q(state="waiting"),
                name="wait_activity_step_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.state} until {self.due_at:%Y-%m-%d %H:%M}"

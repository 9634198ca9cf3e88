from django.db import models
from django.utils.translation import gettext_lazy as _


class RunOutcome(models.TextChoices):
    GRANTED = "granted", _("granted")
    COMPLETED = "completed", _("completed without a grant")
    REJECTED = "rejected", _("rejected")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("skipped")
    # A journey run paused at a wait step; it ends with one of the above, or cancelled.
    WAITING = "waiting", _("waiting")
    CANCELLED = "cancelled", _("cancelled")


class ChainRun(models.Model):
    """One execution of an activity's chain for one event, with its step-by-step trace."""

    event = models.ForeignKey(
        "activities.Event", on_delete=models.CASCADE, related_name="runs", verbose_name=_("event")
    )
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.PROTECT,
        related_name="runs",
        verbose_name=_("activity"),
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.PROTECT,
        related_name="runs",
        verbose_name=_("customer"),
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=RunOutcome.choices, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    steps = models.JSONField(_("step trace"), default=list, blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    template_version = models.PositiveIntegerField(_("template version"), default=0)
    duration_ms = models.FloatField(_("duration (ms)"), null=True, blank=True)
    created_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("chain run")
        verbose_name_plural = _("chain runs")
        constraints = [
            models.UniqueConstraint(fields=["event", "activity"], name="run_unique_event_activity")
        ]
        indexes = [models.Index(fields=["activity", "outcome"], name="run_outcome_idx")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.outcome or 'running'})"

    @property
    def finished(self) -> bool:
        return bool(self.outcome)

from django.db import models
from django.utils.translation import gettext_lazy as _


class Participation(models.Model):
    """The strategy instance: one row per (activity, customer), the lock a chain takes."""

    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="participations",
        verbose_name=_("activity"),
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.CASCADE,
        related_name="participations",
        verbose_name=_("customer"),
    )
    data = models.JSONField(_("context keys"), default=dict, blank=True)
    version = models.PositiveIntegerField(_("version"), default=0)
    created_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    updated_at = models.DateTimeField(_("last seen"), auto_now=True)

    class Meta:
        verbose_name = _("participation")
        verbose_name_plural = _("participations")
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "customer"], name="participation_unique_customer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.activity_id}/{self.customer_id}"


class ParticipationCounter(models.Model):
    """How often something happened, per scope ("c:<customer id>" or "all") and period
    ("2026-11-22" in the activity's timezone, or "all").

    Incremented only by one conditional upsert (`activities.services.counters`), never in Python.
    """

    activity = models.ForeignKey(
        "activities.Activity", on_delete=models.CASCADE, related_name="counters"
    )
    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=100)
    period = models.CharField(max_length=16)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("participation counter")
        verbose_name_plural = _("participation counters")
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "scope", "key", "period"], name="counter_unique_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.scope} {self.period}: {self.count}"

"""Counters keyed by a subject other than the acting customer: a candidate, another customer
named in the payload, a team, a help request.

`SubjectCounter` holds the count (moved only by one conditional upsert, see
`activities.services.subjects`); `SubjectMark` records that one customer counted once for one
subject in one period, so a second time is refused by its unique constraint.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class SubjectKind(models.TextChoices):
    CANDIDATE = "candidate", _("candidate")
    CUSTOMER = "customer", _("customer")
    TEAM = "team", _("team")
    REQUEST = "request", _("help request")


class SubjectCounter(models.Model):
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="subject_counters",
        verbose_name=_("activity"),
    )
    kind = models.CharField(_("subject kind"), max_length=16, choices=SubjectKind.choices)
    subject = models.CharField(_("subject"), max_length=128)
    key = models.CharField(_("counter"), max_length=64)
    count = models.BigIntegerField(_("count"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("subject counter")
        verbose_name_plural = _("subject counters")
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "kind", "subject", "key"], name="subject_counter_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(count__gte=0), name="subject_counter_not_negative"
            ),
        ]
        # Live tallies: the leading subjects of one counter, highest first.
        indexes = [
            models.Index(
                "activity",
                "kind",
                "key",
                models.F("count").desc(),
                name="subject_counter_tally_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.subject} {self.key} = {self.count}"


class SubjectMark(models.Model):
    """One customer counted for one subject once in a period ("2026-12-04" local, or "all")."""

    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("activity"),
    )
    kind = models.CharField(_("subject kind"), max_length=16, choices=SubjectKind.choices)
    subject = models.CharField(_("subject"), max_length=128)
    key = models.CharField(_("counter"), max_length=64)
    actor = models.ForeignKey(
        "segments.Customer", on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    period = models.CharField(_("period"), max_length=16)
    created_at = models.DateTimeField(_("counted at"), auto_now_add=True)

    class Meta:
        verbose_name = _("subject mark")
        verbose_name_plural = _("subject marks")
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "kind", "subject", "key", "actor", "period"],
                name="subject_mark_once_per_period",
            )
        ]

    def __str__(self) -> str:
        return f"{self.actor_id} -> {self.kind}:{self.subject} ({self.period})"

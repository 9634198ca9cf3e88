from django.db import models
from django.utils.translation import gettext_lazy as _


class Streak(models.Model):
    """Consecutive local days a customer did something (checked in) in one activity.

    Moved only by one conditional upsert (`activities.services.streaks`): the day is the
    customer's local date worked out before the write, so two check-ins on one local day can
    never both count, whatever the lock or the clock change.
    """

    activity = models.ForeignKey(
        "activities.Activity", on_delete=models.CASCADE, related_name="streaks"
    )
    customer = models.ForeignKey(
        "segments.Customer", on_delete=models.CASCADE, related_name="streaks"
    )
    key = models.CharField(max_length=64)
    last_day = models.DateField(_("last day"))
    length = models.PositiveIntegerField(_("current streak"), default=0)
    best = models.PositiveIntegerField(_("longest streak"), default=0)
    days = models.PositiveIntegerField(_("days in total"), default=0)
    # Whether the last write made `length` a new record (rewards once per activity read it).
    record = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("streak")
        verbose_name_plural = _("streaks")
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "customer", "key"], name="streak_unique_customer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.customer_id}: {self.length}"

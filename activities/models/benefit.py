from django.db import models
from django.utils.translation import gettext_lazy as _

from .template import code_validator


class BenefitKind(models.TextChoices):
    COUPON = "coupon", _("coupon")
    POINTS = "points", _("points")
    PRIZE = "prize", _("prize")
    CHANCE = "chance", _("chance")
    CASH = "cash", _("cash")


# Quantities of these kinds add up in one balance; the others are held one grant at a time.
STACKABLE_KINDS = frozenset({BenefitKind.POINTS, BenefitKind.CHANCE})


class Benefit(models.Model):
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="benefits",
        verbose_name=_("activity"),
    )
    code = models.CharField(_("code"), max_length=100, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=BenefitKind.choices)
    value = models.DecimalField(
        _("value per unit"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Charged against the activity budget for every unit granted."),
    )
    stock_total = models.PositiveIntegerField(
        _("stock"), null=True, blank=True, help_text=_("Empty means unlimited.")
    )
    stock_remaining = models.PositiveIntegerField(_("stock remaining"), null=True, blank=True)
    per_customer_limit = models.PositiveIntegerField(
        _("limit per customer"), null=True, blank=True, help_text=_("Empty means no limit.")
    )

    class Meta:
        ordering = ["activity", "code"]
        verbose_name = _("benefit")
        verbose_name_plural = _("benefits")
        constraints = [
            models.UniqueConstraint(fields=["activity", "code"], name="benefit_unique_code"),
            models.CheckConstraint(
                condition=models.Q(stock_remaining__gte=0) | models.Q(stock_remaining=None),
                name="benefit_stock_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.activity.code}/{self.code}"

    @property
    def stackable(self) -> bool:
        return self.kind in STACKABLE_KINDS

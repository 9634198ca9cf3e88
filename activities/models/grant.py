import datetime as dt

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition


class GrantState(models.TextChoices):
    ISSUED = "issued", _("issued")
    REDEEMED = "redeemed", _("redeemed")
    EXPIRED = "expired", _("expired")
    REVOKED = "revoked", _("revoked")


class Grant(ConcurrentTransitionMixin, FSMModelMixin, models.Model):
    """A benefit given to a customer; its idempotency key makes every issue happen once."""

    benefit = models.ForeignKey(
        "activities.Benefit",
        on_delete=models.PROTECT,
        related_name="grants",
        verbose_name=_("benefit"),
    )
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.PROTECT,
        related_name="grants",
        verbose_name=_("activity"),
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.PROTECT,
        related_name="grants",
        verbose_name=_("customer"),
    )
    run = models.ForeignKey(
        "activities.ChainRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="grants",
        verbose_name=_("chain run"),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    # Chances and points are spent a unit at a time: what is left of this grant.
    remaining = models.PositiveIntegerField(_("remaining"), default=1)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=2, null=True, blank=True)
    state = FSMField(
        _("state"), default=GrantState.ISSUED, choices=GrantState.choices, protected=True
    )
    # Coupons: the code the customer types at checkout, and when it can be used.
    code = models.CharField(_("coupon code"), max_length=64, null=True, blank=True, unique=True)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    order = models.CharField(_("redeemed on order"), max_length=128, blank=True)
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        indexes = [
            models.Index(fields=["customer", "activity", "state"], name="grant_holder_idx"),
            models.Index(fields=["benefit", "state"], name="grant_benefit_idx"),
            # Issuing to a segment asks, per page member, what they hold of one benefit.
            models.Index(fields=["benefit", "customer"], name="grant_benefit_customer_idx"),
            # The expiry sweep walks only the issued coupons that have an end.
            models.Index(
                fields=["valid_until"],
                condition=models.Q(state=GrantState.ISSUED, valid_until__isnull=False),
                name="grant_expiry_idx",
            ),
        ]
        permissions = [("revoke_grant", _("Can revoke grants"))]

    def __str__(self) -> str:
        return f"{self.benefit} x{self.quantity} -> {self.customer_id}"

    @transition(field=state, source=GrantState.ISSUED, target=GrantState.REDEEMED)
    def redeem(self, order: str = "", at: dt.datetime | None = None) -> None:
        self.remaining = 0
        self.order = order
        self.redeemed_at = at

    @transition(field=state, source=GrantState.REDEEMED, target=GrantState.ISSUED)
    def release(self) -> None:
        """The order that used the coupon was cancelled: usable again."""
        self.remaining = self.quantity
        self.order = ""
        self.redeemed_at = None

    @transition(field=state, source=GrantState.ISSUED, target=GrantState.EXPIRED)
    def expire(self) -> None:
        self.remaining = 0

    @transition(
        field=state,
        source=GrantState.ISSUED,
        target=GrantState.REVOKED,
        permission="activities.revoke_grant",
    )
    def revoke(self) -> None:
        self.remaining = 0

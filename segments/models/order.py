import datetime as dt

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition
from django_fsm_log.decorators import fsm_log_by


class OrderState(models.TextChoices):
    PENDING = "pending", _("pending")
    PAID = "paid", _("paid")
    SHIPPED = "shipped", _("shipped")
    COMPLETED = "completed", _("completed")
    CANCELLED = "cancelled", _("cancelled")
    REFUNDED = "refunded", _("refunded")


# The states in which an order counts as bought: segment aggregates (paid orders, total
# spent, days since last order) read only these.
PAID_STATES = (OrderState.PAID, OrderState.SHIPPED, OrderState.COMPLETED)


class Order(ConcurrentTransitionMixin, FSMModelMixin, models.Model):
    """A storefront order. Transitions change the row only (`by` is the actor for the
    django-fsm-log audit trail); `segments.services.orders` runs
    them under a row lock and records the channel event (`order.paid`, ...) they raise."""

    external_id = models.CharField(_("external id"), max_length=128, unique=True)
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.PROTECT,
        related_name="orders",
        db_index=False,
        verbose_name=_("customer"),
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    state = FSMField(
        _("state"), default=OrderState.PENDING, choices=OrderState.choices, protected=True
    )
    placed_at = models.DateTimeField(_("placed at"))
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-placed_at"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        indexes = [
            models.Index(fields=["customer", "placed_at"], name="order_customer_idx"),
            # "Paid orders in the last N days" starts from the recent paid orders, not from
            # every customer: a range scan over this partial index.
            models.Index(
                fields=["paid_at", "customer"],
                condition=models.Q(state__in=PAID_STATES),
                name="order_paid_recent_idx",
            ),
            # Total spent and days since the last order, per customer.
            models.Index(
                fields=["customer", "paid_at", "amount"],
                condition=models.Q(state__in=PAID_STATES),
                name="order_paid_customer_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="order_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=~models.Q(state__in=PAID_STATES) | models.Q(paid_at__isnull=False),
                name="order_paid_has_paid_at",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id

    @fsm_log_by
    @transition(
        field=state,
        source=OrderState.PENDING,
        target=OrderState.PAID,
        custom={"label": _("Mark paid")},
    )
    def pay(self, *, at: dt.datetime | None = None, by: object = None) -> None:
        self.paid_at = at or timezone.now()

    @fsm_log_by
    @transition(
        field=state,
        source=OrderState.PAID,
        target=OrderState.SHIPPED,
        custom={"label": _("Mark shipped")},
    )
    def ship(self, *, at: dt.datetime | None = None, by: object = None) -> None:
        self.shipped_at = at or timezone.now()

    @fsm_log_by
    @transition(
        field=state,
        source=OrderState.SHIPPED,
        target=OrderState.COMPLETED,
        custom={"label": _("Mark completed")},
    )
    def complete(self, *, at: dt.datetime | None = None, by: object = None) -> None:
        self.completed_at = at or timezone.now()

    @fsm_log_by
    @transition(
        field=state,
        source=[OrderState.PENDING, OrderState.PAID],
        target=OrderState.CANCELLED,
        custom={"label": _("Cancel")},
    )
    def cancel(self, *, at: dt.datetime | None = None, by: object = None) -> None:
        self.cancelled_at = at or timezone.now()

    @fsm_log_by
    @transition(
        field=state,
        source=[OrderState.PAID, OrderState.SHIPPED],
        target=OrderState.REFUNDED,
        custom={"label": _("Refund")},
    )
    def refund(self, *, at: dt.datetime | None = None, by: object = None) -> None:
        self.refunded_at = at or timezone.now()


# Transition method name -> the state it reaches, which names the channel (`order.<state>`).
ORDER_TRANSITIONS = {
    "pay": OrderState.PAID,
    "ship": OrderState.SHIPPED,
    "complete": OrderState.COMPLETED,
    "cancel": OrderState.CANCELLED,
    "refund": OrderState.REFUNDED,
}

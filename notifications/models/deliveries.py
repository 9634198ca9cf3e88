"""Deliveries: one message to one customer, from a broadcast or a chain's notify step."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.models.broadcasts import Broadcast
from notifications.models.templates import ChannelKind


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("skipped")


# Not finished: a sender may still claim the delivery (queued) or holds it (sending). A broadcast
# is done when none of its deliveries is in one of these.
OPEN_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)


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
    attempt number it claimed, so a stale sender can never overwrite a newer attempt. Claims
    lost with their sender (a killed worker) count in `lost_claims`, not against the provider's
    retry budget: the provider was never asked.
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
    lost_claims = models.PositiveSmallIntegerField(
        _("claims lost with their sender"),
        default=0,
        help_text=_(
            "Times a sender took this message and stopped responding before it reported back "
            "(a worker restarted or killed)."
        ),
    )
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
                condition=models.Q(status__in=list(OPEN_STATUSES)),
                name="delivery_open_idx",
            ),
            # One message per address per broadcast.
            models.Index(
                fields=["address", "broadcast"],
                condition=~models.Q(status=DeliveryStatus.SKIPPED),
                name="delivery_address_idx",
            ),
            # The frequency cap (and the customer foreign key).
            models.Index(fields=["customer", "created_at"], name="delivery_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} -> {self.customer_id} ({self.status})"

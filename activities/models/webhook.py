"""Webhook calls: the outbox of the `call_webhook` step."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WebhookCallState(models.TextChoices):
    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed (dead letter)")


# A sweeper looks for these: not sent yet, nor given up on.
OPEN_STATES = (WebhookCallState.PENDING, WebhookCallState.SENDING)


class WebhookFailure(models.TextChoices):
    INVALID_URL = "invalid_url", _("not an http(s) address")
    HTTPS_REQUIRED = "https_required", _("https required")
    ADDRESS_REFUSED = "address_refused", _("address not public")
    REDIRECT_REFUSED = "redirect_refused", _("redirect not followed")
    REJECTED = "rejected", _("refused by the receiver")
    RETRIES_EXHAUSTED = "retries_exhausted", _("no success after the last attempt")
    NOT_CONFIGURED = "not_configured", _("no signing secret configured")


class WebhookCall(models.Model):
    """One POST a chain run asked for, written in the run's transaction and sent after it
    commits; the row, not the Celery message, is what guarantees it is sent.

    `attempts` doubles as the claim token: an attempt records its outcome only on the row still
    `sending` with the attempt number it claimed. `next_attempt_at` is when a pending call is due,
    and while it is `sending`, when its claim lapses (the worker died).
    """

    run = models.ForeignKey(
        "activities.ChainRun",
        on_delete=models.PROTECT,
        related_name="webhook_calls",
        verbose_name=_("run"),
    )
    url = models.CharField(_("URL"), max_length=2000)
    body = models.JSONField(_("body"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, unique=True)
    state = models.CharField(
        _("status"),
        max_length=16,
        choices=WebhookCallState.choices,
        default=WebhookCallState.PENDING,
    )
    reason = models.CharField(
        _("failure reason"), max_length=32, blank=True, choices=WebhookFailure.choices
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    response_status = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook call")
        verbose_name_plural = _("webhook calls")
        permissions = [("resend_webhookcall", _("Can send a failed webhook call again"))]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state__in=list(OPEN_STATES)),
                name="webhookcall_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.idempotency_key} ({self.state})"

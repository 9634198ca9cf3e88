"""Coupons as assets: the uploaded code pool, the storefront's redemption answers, and the
jobs that issue a benefit to a whole segment."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition


class CouponCode(models.Model):
    """One uploaded code of a pool benefit; `issued` flips once, by a SKIP LOCKED claim."""

    benefit = models.ForeignKey(
        "activities.Benefit",
        on_delete=models.CASCADE,
        related_name="pool_codes",
        verbose_name=_("benefit"),
    )
    code = models.CharField(_("coupon code"), max_length=64, unique=True)
    issued = models.BooleanField(_("issued"), default=False)

    class Meta:
        verbose_name = _("pool code")
        verbose_name_plural = _("pool codes")
        indexes = [
            models.Index(
                fields=["benefit", "id"],
                condition=models.Q(issued=False),
                name="couponcode_free_idx",
            )
        ]

    def __str__(self) -> str:
        return self.code


class CouponRedemption(models.Model):
    """One redeem or release request and the answer it got: the same Idempotency-Key from the
    same client gets the same answer; an order event keys its own by order and code."""

    client = models.ForeignKey(
        "core.StorefrontKey",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("API key"),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=255)
    action = models.CharField(_("action"), max_length=16)
    grant = models.ForeignKey(
        "activities.Grant",
        on_delete=models.CASCADE,
        related_name="redemptions",
        verbose_name=_("grant"),
    )
    request = models.JSONField(_("request"), default=dict)
    status = models.PositiveSmallIntegerField(_("HTTP status"))
    response = models.JSONField(_("response"), default=dict)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("coupon redemption")
        verbose_name_plural = _("coupon redemptions")
        constraints = [
            models.UniqueConstraint(
                fields=["client", "idempotency_key"],
                nulls_distinct=False,
                name="couponredemption_unique_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.grant_id}: {self.status}"


class IssueState(models.TextChoices):
    REQUESTED = "requested", _("waiting for approval")
    APPROVED = "approved", _("approved, issuing")
    COMPLETED = "completed", _("completed")
    CANCELLED = "cancelled", _("cancelled")


def may_cancel_issue(issue: BenefitIssue, user: Any) -> bool:
    """Whoever prepares issues (operators) or approves them (approvers) may call one off."""
    return bool(
        user.has_perm("activities.change_benefitissue")
        or user.has_perm("activities.approve_benefitissue")
    )


class BenefitIssue(ConcurrentTransitionMixin, FSMModelMixin, models.Model):
    """Issuing one benefit to every customer of a segment, page by page.

    `cursor` is the last customer id handled; it moves in the same transaction as that page's
    grants, so a killed run resumes where the last commit left it and never issues twice.
    """

    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.PROTECT,
        related_name="issues",
        verbose_name=_("activity"),
    )
    benefit = models.ForeignKey(
        "activities.Benefit",
        on_delete=models.PROTECT,
        related_name="issues",
        verbose_name=_("benefit"),
    )
    segment = models.ForeignKey(
        "segments.Segment",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("segment"),
    )
    notification_template = models.ForeignKey(
        "notifications.NotificationTemplate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("notification"),
        help_text=_("Optional: sent to each customer who gets a coupon, with their own code."),
    )
    state = FSMField(
        _("state"), default=IssueState.REQUESTED, choices=IssueState.choices, protected=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )
    # Set when review was bypassed on purpose (the command line): who did it, and how.
    bypass = models.CharField(_("review bypassed by"), max_length=200, blank=True)
    audience = models.PositiveIntegerField(_("audience when requested"), default=0)
    cursor = models.BigIntegerField(_("last customer handled"), default=0)
    issued = models.PositiveIntegerField(_("issued"), default=0)
    skipped = models.PositiveIntegerField(_("not issued"), default=0)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("issue to a segment")
        verbose_name_plural = _("issues to segments")
        permissions = [("approve_benefitissue", _("Can approve issuing to a segment"))]

    def __str__(self) -> str:
        return f"{self.benefit} -> {self.segment}"

    @transition(
        field=state,
        source=IssueState.REQUESTED,
        target=IssueState.APPROVED,
        permission="activities.approve_benefitissue",
    )
    def approve(self) -> None:
        pass

    @transition(
        field=state,
        source=IssueState.REQUESTED,
        target=IssueState.CANCELLED,
        permission=may_cancel_issue,
    )
    def cancel(self) -> None:
        pass

    @transition(field=state, source=IssueState.APPROVED, target=IssueState.COMPLETED)
    def complete(self) -> None:
        pass


class IssueOutcome(models.TextChoices):
    OUT_OF_STOCK = "out_of_stock", _("out of stock")
    BUDGET_EXHAUSTED = "budget_exhausted", _("budget exhausted")
    ALREADY_HELD = "already_held", _("already holds one")
    LIMIT_REACHED = "limit_reached", _("reached the limit per customer")


class IssueSkip(models.Model):
    """A customer of the segment who got nothing, and why (the granted ones have a Grant)."""

    issue = models.ForeignKey(
        BenefitIssue, on_delete=models.CASCADE, related_name="skips", verbose_name=_("issue")
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        verbose_name=_("customer"),
    )
    outcome = models.CharField(_("outcome"), max_length=20, choices=IssueOutcome.choices)

    class Meta:
        verbose_name = _("customer not issued")
        verbose_name_plural = _("customers not issued")
        constraints = [
            models.UniqueConstraint(fields=["issue", "customer"], name="issueskip_unique")
        ]

    def __str__(self) -> str:
        return f"{self.issue_id}/{self.customer_id}: {self.outcome}"

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ActivityApproval(models.Model):
    """An approver's yes to one exact configuration: the activity may be scheduled and launched
    only while everything it will run still hashes to `fingerprint`."""

    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="approvals",
        verbose_name=_("activity"),
    )
    fingerprint = models.CharField(_("configuration fingerprint"), max_length=64)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )
    # Set when review was bypassed on purpose (import_activity --launch): who did it, and how.
    bypass = models.CharField(_("review bypassed by"), max_length=200, blank=True)
    approved_at = models.DateTimeField(_("approved at"), auto_now_add=True)

    class Meta:
        ordering = ["-approved_at", "-pk"]
        verbose_name = _("activity approval")
        verbose_name_plural = _("activity approvals")

    def __str__(self) -> str:
        return f"{self.activity_id} @ {self.fingerprint[:12]}"

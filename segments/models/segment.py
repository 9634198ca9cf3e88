from django.db import models
from django.utils.translation import gettext_lazy as _


class Segment(models.Model):
    """An audience: static (an explicit member list) or dynamic (a condition tree compiled to
    one SQL query by `segments.rules`)."""

    class Kind(models.TextChoices):
        STATIC = "static", _("static")
        DYNAMIC = "dynamic", _("dynamic")

    code = models.SlugField(_("code"), max_length=100, unique=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.DYNAMIC)
    rule = models.JSONField(
        _("rule"),
        null=True,
        blank=True,
        help_text=_(
            'A condition tree, e.g. {"all": [{"field": "customer.tags", "op": "contains", '
            '"value": "vip"}, {"field": "customer.orders.paid_last_2d", "op": "gte", '
            '"value": 2}]}. Dynamic segments only.'
        ),
    )
    # Count cache: written by the count preview and by every snapshot refresh.
    member_count = models.PositiveIntegerField(_("member count"), null=True, blank=True)
    counted_at = models.DateTimeField(_("counted at"), null=True, blank=True)
    snapshot_at = models.DateTimeField(_("snapshot taken at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    """A member of a static segment (uploaded list of external ids, or customers by tag)."""

    segment = models.ForeignKey(
        Segment,
        on_delete=models.CASCADE,
        related_name="members",
        db_index=False,
        verbose_name=_("segment"),
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("customer"),
    )
    added_at = models.DateTimeField(_("added at"), auto_now_add=True)

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.customer_id}"


class SegmentSnapshot(models.Model):
    """A dynamic segment's membership as of `Segment.snapshot_at`: a stable audience for a
    long fan-out, and the source of the cached count. Rewritten whole by each refresh."""

    segment = models.ForeignKey(
        Segment,
        on_delete=models.CASCADE,
        related_name="snapshot_rows",
        db_index=False,
        verbose_name=_("segment"),
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("customer"),
    )

    class Meta:
        verbose_name = _("segment snapshot row")
        verbose_name_plural = _("segment snapshot rows")
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="segment_snapshot_unique")
        ]

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.customer_id}"

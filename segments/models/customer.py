from functools import cached_property

from django.db import models
from django.utils.translation import gettext_lazy as _

# The customer's profile as the storefront syncs it, in the order of a CSV export. The admin
# form, the CSV import and export, the rule grammar and the data generator all derive their
# field lists from these two declarations.
PROFILE_FIELDS = (
    "external_id",
    "name",
    "email",
    "phone",
    "birthday",
    "timezone",
    "locale",
    "level",
    "wechat_openid",
    "email_consent",
    "sms_consent",
    "wechat_consent",
    "unsubscribed_at",
)
# What a sync (API or CSV) may carry: the profile, free attributes and tag codes.
SYNCED_FIELDS = (*PROFILE_FIELDS, "attributes", "tags")


class Customer(models.Model):
    """A storefront customer, known by the storefront's own id.

    Values arrive through `segments.services.cleansing`: a bad birthday, email, phone or
    timezone is stored blank/null and recorded in `quality_flags` instead of failing the sync.
    """

    external_id = models.CharField(_("external id"), max_length=128, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    timezone = models.CharField(_("timezone"), max_length=64, blank=True)
    locale = models.CharField(_("locale"), max_length=16, blank=True)
    level = models.CharField(_("level"), max_length=32, blank=True)
    wechat_openid = models.CharField(_("WeChat openid"), max_length=64, blank=True)
    email_consent = models.BooleanField(_("email consent"), default=False)
    sms_consent = models.BooleanField(_("SMS consent"), default=False)
    wechat_consent = models.BooleanField(_("WeChat consent"), default=False)
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    # [{"field": "birthday", "code": "invalid_date", "value": "1990-13-45"}, ...]
    quality_flags = models.JSONField(_("data-quality flags"), default=list, blank=True)
    tag_set = models.ManyToManyField(
        "segments.Tag",
        through="segments.CustomerTag",
        related_name="customers",
        blank=True,
        verbose_name=_("tags"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        # Operators load customers in bulk through the cleansing path; nobody hand-edits one.
        permissions = [("import_customers", _("Can import customers from CSV"))]
        indexes = [
            models.Index(fields=["level"], name="customer_level_idx"),
            models.Index(fields=["created_at"], name="customer_created_idx"),
            # The admin's data-quality filter reads only the (few) flagged rows.
            models.Index(
                fields=["id"],
                condition=~models.Q(quality_flags=[]),
                name="customer_flagged_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id

    @cached_property
    def tags(self) -> tuple[str, ...]:
        """Tag codes, so a chain rule `customer.tags contains "vip"` reads a plain list."""
        return tuple(self.tag_set.order_by("code").values_list("code", flat=True))


class Tag(models.Model):
    """A label the storefront or an operator puts on customers; matched by identity, never
    by substring, so tag "1" can never match a customer tagged "11"."""

    code = models.CharField(_("code"), max_length=100, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name or self.code


class CustomerTag(models.Model):
    # Both composite indexes below lead with one of the keys: no single-column indexes.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        verbose_name=_("customer"),
    )
    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("tag")
    )

    class Meta:
        verbose_name = _("customer tag")
        verbose_name_plural = _("customer tags")
        constraints = [
            # (customer, tag) answers "does this customer have the tag"; the index below
            # answers "who has the tag" for segments, index-only.
            models.UniqueConstraint(fields=["customer", "tag"], name="customer_tag_unique"),
        ]
        indexes = [models.Index(fields=["tag", "customer"], name="customer_tag_by_tag_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.tag_id}"

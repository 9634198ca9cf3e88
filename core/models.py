from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey


class ApiScope(models.TextChoices):
    EVENTS = "events", _("fire events and read results")
    CUSTOMERS = "customers", _("sync customers")
    ORDERS = "orders", _("sync orders")
    BROADCASTS = "broadcasts", _("read broadcasts")
    COUPONS = "coupons", _("read, redeem and release coupons")


ALL_SCOPES = [scope.value for scope in ApiScope]


def default_scopes() -> list[str]:
    """A new key may do nothing it was not given explicitly."""
    return []


class StorefrontKey(AbstractAPIKey):
    """A hashed, revocable key of one storefront client, limited to its scopes."""

    scopes = models.JSONField(_("scopes"), default=default_scopes)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("storefront API key")
        verbose_name_plural = _("storefront API keys")


class OperatorProfile(models.Model):
    """A back-office user's own settings, kept across sessions and devices (the language
    cookie alone is lost with the browser)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="gambit_profile",
        verbose_name=_("user"),
    )
    language = models.CharField(_("language"), max_length=16, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("operator profile")
        verbose_name_plural = _("operator profiles")

    def __str__(self) -> str:
        return str(self.user)

from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey


class ApiScope(models.TextChoices):
    EVENTS = "events", _("fire events and read results")
    CUSTOMERS = "customers", _("sync customers")
    ORDERS = "orders", _("sync orders")
    BROADCASTS = "broadcasts", _("read broadcasts")


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

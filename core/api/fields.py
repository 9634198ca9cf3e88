"""Serializer fields the apps' APIs share."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.text import has_control_characters

EXTERNAL_ID_MAX_LENGTH = 128


class ExternalIdField(serializers.CharField):
    """A storefront id (customer, order): at most 128 printable characters."""

    default_error_messages = {
        "control_characters": _("Ids may not contain control characters."),
    }

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("max_length", EXTERNAL_ID_MAX_LENGTH)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def to_internal_value(self, data: str) -> str:
        value = super().to_internal_value(data)
        if has_control_characters(value):
            self.fail("control_characters")
        return value

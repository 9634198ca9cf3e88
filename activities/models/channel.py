from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

CHANNEL_CODE_PATTERN = r"^[a-z0-9]+([._-][a-z0-9]+)*$"
channel_code_validator = RegexValidator(
    CHANNEL_CODE_PATTERN,
    _("Use lower-case letters, digits and . _ - (for example quiz.completed)."),
)


class Channel(models.Model):
    """An event type the storefront fires, such as `quiz.completed`."""

    code = models.CharField(
        _("code"), max_length=100, unique=True, validators=[channel_code_validator]
    )
    name = models.CharField(_("name"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    payload_schema = models.JSONField(
        _("payload JSON Schema"),
        null=True,
        blank=True,
        help_text=_("Optional JSON Schema; an event whose payload breaks it is refused with 400."),
    )
    internal = models.BooleanField(
        _("fired by Gambit only"),
        default=False,
        help_text=_(
            "Set when a step sends events on this channel to other customers (a team's members, "
            "a help request's initiator): the storefront's events on it are refused, so nobody "
            "can claim those rewards by firing the event."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.code

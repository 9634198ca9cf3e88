"""Notification templates: what a message says, per channel, checked at save."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from notifications import rendering

code_validator = RegexValidator(
    r"^[a-z0-9]+(-[a-z0-9]+)*$", _("Use lower-case letters, digits and hyphens.")
)


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("email")
    WECHAT = "wechat", _("WeChat subscription message")
    SMS = "sms", _("SMS")
    WEBHOOK = "webhook", _("webhook")


class NotificationTemplate(models.Model):
    """What a message says, per channel, with placeholders such as {{ customer.name }}."""

    code = models.CharField(_("code"), max_length=100, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    channel = models.CharField(_("channel"), max_length=16, choices=ChannelKind.choices)
    subject = models.CharField(
        _("subject"), max_length=300, blank=True, help_text=_("Email subject; a template.")
    )
    body = models.TextField(
        _("body"),
        blank=True,
        help_text=_(
            "The message text, with placeholders such as {{ customer.name }}. A placeholder "
            "without a value fails that one message; use {{ customer.name|default('friend') }} "
            "for a fallback."
        ),
    )
    fields = models.JSONField(
        _("fields"),
        default=dict,
        blank=True,
        help_text=_(
            "WeChat: the subscription message's data keys, e.g. "
            '{"thing1": "{{ customer.name }}", "time2": "{{ event.when }}"}. Webhook: extra '
            "fields sent with the body. Each value is a template."
        ),
    )
    provider_template_id = models.CharField(
        _("provider template id"),
        max_length=128,
        blank=True,
        help_text=_("WeChat template_id, or the SMS provider's template code."),
    )
    link = models.CharField(
        _("link"),
        max_length=500,
        blank=True,
        help_text=_("WeChat: the mini-program page the message opens."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("notification template")
        verbose_name_plural = _("notification templates")

    def __str__(self) -> str:
        return self.name or self.code

    def save(self, *args, **kwargs) -> None:
        # No path around the check: a template with an unknown placeholder is never stored.
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if problems := self.problems():
            raise ValidationError(problems)

    def sources(self) -> dict[str, str]:
        """Every template text, by the form field it lives in."""
        out = {"subject": self.subject, "body": self.body}
        if isinstance(self.fields, dict):
            out.update({f"fields.{key}": str(value) for key, value in self.fields.items()})
        return out

    def problems(self) -> dict[str, list[str]]:
        """Every reason this template cannot be saved, by field."""
        found: dict[str, list[str]] = {}
        for name, source in self.sources().items():
            for problem in rendering.check_source(source, transactional=True):
                found.setdefault(name.split(".", 1)[0], []).append(
                    f"{name}: {problem}" if name.startswith("fields.") else str(problem)
                )
        if not isinstance(self.fields, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in self.fields.items()
        ):
            found.setdefault("fields", []).append(
                str(_("Fields must be an object of names to template strings."))
            )
        required = {
            ChannelKind.EMAIL: ("subject", "body"),
            ChannelKind.SMS: ("body",),
            ChannelKind.WEBHOOK: ("body",),
            ChannelKind.WECHAT: ("provider_template_id", "fields"),
        }.get(self.channel, ())
        for name in required:
            if not getattr(self, name):
                found.setdefault(name, []).append(
                    str(_("The %(channel)s channel needs this.") % {"channel": self.channel})
                )
        return found

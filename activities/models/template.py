from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

code_validator = RegexValidator(
    r"^[a-z0-9]+(-[a-z0-9]+)*$", _("Use lower-case letters, digits and hyphens.")
)


class StrategyTemplate(models.Model):
    """A gameplay: which chain runs on which channel. New gameplay = new template, no code."""

    code = models.CharField(_("code"), max_length=100, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    # The gameplay (activities/definitions/gameplays) and parameters the chains were built
    # from; blank for a template made by hand. Experts may still edit the chains afterwards.
    gameplay = models.CharField(_("gameplay"), max_length=64, blank=True)
    gameplay_parameters = models.JSONField(_("gameplay parameters"), default=dict, blank=True)
    # Bumped by every configuration edit; compiled chains are cached per version.
    version = models.PositiveIntegerField(_("version"), default=1)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("strategy template")
        verbose_name_plural = _("strategy templates")

    def __str__(self) -> str:
        return self.name or self.code


class Chain(models.Model):
    template = models.ForeignKey(
        StrategyTemplate,
        on_delete=models.CASCADE,
        related_name="chains",
        verbose_name=_("template"),
    )
    channel = models.ForeignKey(
        "activities.Channel",
        on_delete=models.PROTECT,
        related_name="chains",
        verbose_name=_("channel"),
    )
    requires_lock = models.BooleanField(
        _("lock per customer"),
        default=True,
        help_text=_(
            "Run this chain one event at a time per (activity, customer). Needed whenever a "
            "step reads something an earlier run may change (limits, chances)."
        ),
    )

    class Meta:
        verbose_name = _("chain")
        verbose_name_plural = _("chains")
        constraints = [
            models.UniqueConstraint(fields=["template", "channel"], name="chain_unique_channel")
        ]

    def __str__(self) -> str:
        return f"{self.template.code} / {self.channel.code}"


class ErrorPolicy(models.TextChoices):
    ABORT = "abort", _("abort the run")
    CONTINUE = "continue", _("record and continue")


class ChainStep(models.Model):
    chain = models.ForeignKey(
        Chain, on_delete=models.CASCADE, related_name="steps", verbose_name=_("chain")
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    processor = models.CharField(_("processor"), max_length=64)
    config = models.JSONField(_("configuration"), default=dict, blank=True)
    when = models.JSONField(
        _("only when"),
        null=True,
        blank=True,
        help_text=_("Optional condition; the step is skipped when it is false."),
    )
    on_error = models.CharField(
        _("on error"), max_length=16, choices=ErrorPolicy.choices, default=ErrorPolicy.ABORT
    )

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("chain step")
        verbose_name_plural = _("chain steps")

    def __str__(self) -> str:
        return f"{self.position}. {self.processor}"

"""Experiments: who saw which variant, which goals count as a conversion, what converted.

An experiment is either a `split` step of an activity (its variants are steps, defined in the
chain's configuration; the row is created the first time a customer is exposed) or an A/B test
of a broadcast (its variants are notification templates, sent to a test slice of a segment
before the winner goes to the rest). Either way one Assignment per (experiment, customer)
holds the variant a customer got, and one Conversion per (goal, customer) the first time that
customer converted: unique constraints, so re-delivered events and concurrent runs count once.

Transitions only change the row; `activities.experiments.services` owns their side effects.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition

variant_name_validator = RegexValidator(
    r"^[a-z0-9]+([_-][a-z0-9]+)*$", _("Use lower-case letters, digits, - and _.")
)
goal_code_validator = RegexValidator(
    r"^[a-z0-9]+(-[a-z0-9]+)*$", _("Use lower-case letters, digits and hyphens.")
)


class ExperimentKind(models.TextChoices):
    ACTIVITY = "activity", _("split step of an activity")
    BROADCAST = "broadcast", _("A/B test of a broadcast")


class ExperimentState(models.TextChoices):
    DRAFT = "draft", _("draft")
    TESTING = "testing", _("testing")
    DECIDED = "decided", _("winner picked")
    CANCELLED = "cancelled", _("cancelled")


class AssignmentPhase(models.TextChoices):
    TEST = "test", _("test")
    ROLLOUT = "rollout", _("rollout of the winner")


class Experiment(ConcurrentTransitionMixin, FSMModelMixin, models.Model):
    """One A/B test: the variants of an activity's split step, or a broadcast's templates."""

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=ExperimentKind.choices)
    state = FSMField(
        _("state"), default=ExperimentState.DRAFT, choices=ExperimentState.choices, protected=True
    )
    # The hash input that places customers; fixed at creation so placement never moves.
    salt = models.CharField(_("salt"), max_length=200, editable=False)
    # --- a split step of an activity
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="experiments",
        verbose_name=_("activity"),
    )
    key = models.CharField(_("split key"), max_length=50, blank=True)
    # --- an A/B test of a broadcast
    segment = models.ForeignKey(
        "segments.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("segment"),
        help_text=_("Everyone the message is for: a test slice first, the rest get the winner."),
    )
    test_share = models.DecimalField(
        _("test share"),
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0001), MaxValueValidator(1)],
        help_text=_("Part of the segment in the test, e.g. 0.2 for 20%; 1 tests on everyone."),
    )
    decide_after = models.DurationField(
        _("decide after"),
        null=True,
        blank=True,
        help_text=_("How long after the test starts the winner is picked (e.g. 1 day, 0:00:00)."),
    )
    auto_pick = models.BooleanField(
        _("pick the winner automatically"),
        default=True,
        help_text=_(
            "At the deadline the variant with the best conversion rate on the first goal wins "
            "and is sent to the rest. Off: an operator picks it."
        ),
    )
    started_at = models.DateTimeField(_("test started at"), null=True, blank=True)
    decide_at = models.DateTimeField(_("winner due at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("winner picked at"), null=True, blank=True)
    winner = models.CharField(_("winner"), max_length=50, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("picked by"),
    )
    decision = models.TextField(_("how the winner was picked"), blank=True)
    # Set once the rest of the segment has been assigned the winner (and its broadcast started).
    rolled_out_at = models.DateTimeField(_("winner sent to the rest at"), null=True, blank=True)
    rollout_broadcast = models.OneToOneField(
        "notifications.Broadcast",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rollout_of",
        verbose_name=_("rollout broadcast"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "key"],
                condition=models.Q(activity__isnull=False),
                name="experiment_one_per_split_key",
            ),
            models.CheckConstraint(
                condition=(models.Q(kind="activity") & models.Q(activity__isnull=False))
                | (models.Q(kind="broadcast") & models.Q(activity__isnull=True)),
                name="experiment_kind_matches",
            ),
        ]
        permissions = [("run_experiment", _("Can start experiments and pick their winner"))]

    def __str__(self) -> str:
        return self.name

    @transition(
        field=state,
        source=ExperimentState.DRAFT,
        target=ExperimentState.TESTING,
        permission="activities.run_experiment",
    )
    def start(self, now: dt.datetime) -> None:
        self.started_at = now
        self.decide_at = now + self.decide_after if self.decide_after is not None else None

    @transition(
        field=state,
        source=ExperimentState.TESTING,
        target=ExperimentState.DECIDED,
        permission="activities.run_experiment",
    )
    def decide(self, winner: str, decision: str, now: dt.datetime) -> None:
        self.winner = winner
        self.decision = decision
        self.decided_at = now

    @transition(
        field=state,
        source=[ExperimentState.DRAFT, ExperimentState.TESTING],
        target=ExperimentState.CANCELLED,
        permission="activities.run_experiment",
    )
    def cancel(self) -> None:
        pass


class ExperimentVariant(models.Model):
    """A broadcast experiment's variant: a template and its share of the test slice."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="variants", verbose_name=_("experiment")
    )
    name = models.CharField(_("name"), max_length=50, validators=[variant_name_validator])
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    weight = models.DecimalField(
        _("weight"), max_digits=9, decimal_places=3, default=1, validators=[MinValueValidator(0)]
    )
    template = models.ForeignKey(
        "notifications.NotificationTemplate",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("template"),
    )
    broadcast = models.OneToOneField(
        "notifications.Broadcast",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="experiment_variant",
        verbose_name=_("test broadcast"),
    )

    class Meta:
        ordering = ["experiment", "position", "pk"]
        verbose_name = _("experiment variant")
        verbose_name_plural = _("experiment variants")
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="variant_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Assignment(models.Model):
    """The variant a customer got: written once, never changed (a split's exposure, or a
    broadcast experiment's placement in the test slice or the rollout)."""

    experiment = models.ForeignKey(
        Experiment,
        on_delete=models.CASCADE,
        related_name="assignments",
        verbose_name=_("experiment"),
        db_index=False,
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("customer"),
    )
    variant = models.CharField(_("variant"), max_length=50)
    phase = models.CharField(
        _("phase"), max_length=8, choices=AssignmentPhase.choices, default=AssignmentPhase.TEST
    )
    assigned_at = models.DateTimeField(_("assigned at"))
    event = models.ForeignKey(
        "activities.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("exposing event"),
    )

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "customer"], name="assignment_one_per_customer"
            )
        ]
        indexes = [
            models.Index(fields=["experiment", "phase", "variant"], name="assignment_variant_idx")
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.customer_id} -> {self.variant}"


class ConversionGoal(models.Model):
    """What counts as a conversion: an event on `channel` within `window` after exposure,
    optionally only when its payload meets `condition`."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="goals", verbose_name=_("experiment")
    )
    code = models.CharField(_("code"), max_length=100, validators=[goal_code_validator])
    name = models.CharField(_("name"), max_length=200, blank=True)
    channel = models.ForeignKey(
        "activities.Channel",
        on_delete=models.PROTECT,
        related_name="conversion_goals",
        verbose_name=_("channel"),
    )
    window = models.DurationField(
        _("window"),
        default=dt.timedelta(days=7),
        help_text=_("A conversion counts when the event comes within this long after exposure."),
    )
    condition = models.JSONField(
        _("condition"),
        null=True,
        blank=True,
        help_text=_(
            'Optional, on the event payload, e.g. {"all": [{"field": "event.amount", "op": '
            '"gte", "value": 100}]}.'
        ),
    )
    position = models.PositiveSmallIntegerField(
        _("position"), default=0, help_text=_("The first goal decides a broadcast's winner.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["experiment", "position", "pk"]
        verbose_name = _("conversion goal")
        verbose_name_plural = _("conversion goals")
        constraints = [
            models.UniqueConstraint(fields=["experiment", "code"], name="goal_unique_code")
        ]

    def __str__(self) -> str:
        return self.name or self.code


class Conversion(models.Model):
    """A customer's first conversion on a goal, attributed to the variant they were exposed to."""

    goal = models.ForeignKey(
        ConversionGoal,
        on_delete=models.CASCADE,
        related_name="conversions",
        verbose_name=_("goal"),
        db_index=False,
    )
    experiment = models.ForeignKey(
        Experiment,
        on_delete=models.CASCADE,
        related_name="conversions",
        verbose_name=_("experiment"),
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("customer"),
    )
    variant = models.CharField(_("variant"), max_length=50)
    event = models.ForeignKey(
        "activities.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("converting event"),
    )
    exposed_at = models.DateTimeField(_("exposed at"))
    converted_at = models.DateTimeField(_("converted at"))

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")
        constraints = [
            models.UniqueConstraint(
                fields=["goal", "customer"], name="conversion_once_per_customer"
            )
        ]
        indexes = [models.Index(fields=["goal", "variant"], name="conversion_variant_idx")]

    def __str__(self) -> str:
        return f"{self.goal_id}:{self.customer_id} ({self.variant})"

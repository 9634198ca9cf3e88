"""Teams (group-buy) and help requests (assist): groups of customers gathered around one
customer's run, each a state machine whose transitions django-fsm-log records.

A team's `members` and a request's `helpers` move only by conditional UPDATE
(`activities.services.teams`, `activities.services.assists`), so the cap holds under any
number of concurrent joins; the unique constraints below refuse what the counts cannot see.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition


class TeamState(models.TextChoices):
    FORMING = "forming", _("forming")
    COMPLETE = "complete", _("complete")
    EXPIRED = "expired", _("expired")


class Team(FSMModelMixin, models.Model):
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="teams",
        verbose_name=_("activity"),
    )
    code = models.CharField(_("team code"), max_length=32)
    leader = models.ForeignKey(
        "segments.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("leader")
    )
    size = models.PositiveSmallIntegerField(_("size"))
    members = models.PositiveSmallIntegerField(_("members"), default=1)
    state = FSMField(
        _("state"), default=TeamState.FORMING, choices=TeamState.choices, protected=True
    )
    expires_at = models.DateTimeField(_("expires at"))
    created_at = models.DateTimeField(_("opened at"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        constraints = [
            models.UniqueConstraint(fields=["activity", "code"], name="team_unique_code"),
            models.CheckConstraint(
                condition=models.Q(members__lte=models.F("size")), name="team_not_over_size"
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=models.Q(state="forming"),
                name="team_forming_expiry_idx",
            )
        ]

    def __str__(self) -> str:
        return self.code

    @transition(field=state, source=TeamState.FORMING, target=TeamState.COMPLETE)
    def complete(self) -> None:
        pass

    @transition(field=state, source=TeamState.FORMING, target=TeamState.EXPIRED)
    def expire(self) -> None:
        pass


class TeamMember(models.Model):
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("team")
    )
    # The team's activity, copied so one constraint can say "one open team per activity".
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("activity"),
    )
    customer = models.ForeignKey(
        "segments.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    # True while the team is forming; cleared when it completes or expires.
    open = models.BooleanField(_("in a forming team"), default=True)
    joined_at = models.DateTimeField(_("joined at"), auto_now_add=True)

    class Meta:
        ordering = ["joined_at", "pk"]
        verbose_name = _("team member")
        verbose_name_plural = _("team members")
        constraints = [
            models.UniqueConstraint(fields=["team", "customer"], name="team_member_once"),
            models.UniqueConstraint(
                fields=["activity", "customer"],
                condition=models.Q(open=True),
                name="team_member_one_open_team",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.team_id}"


class HelpRequestState(models.TextChoices):
    OPEN = "open", _("open")
    FULFILLED = "fulfilled", _("fulfilled")
    EXPIRED = "expired", _("expired")


class HelpRequest(FSMModelMixin, models.Model):
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="help_requests",
        verbose_name=_("activity"),
    )
    code = models.CharField(_("request code"), max_length=32)
    initiator = models.ForeignKey(
        "segments.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("initiator")
    )
    needed = models.PositiveSmallIntegerField(_("helpers needed"))
    helpers = models.PositiveSmallIntegerField(_("helpers"), default=0)
    state = FSMField(
        _("state"), default=HelpRequestState.OPEN, choices=HelpRequestState.choices, protected=True
    )
    expires_at = models.DateTimeField(_("expires at"))
    created_at = models.DateTimeField(_("opened at"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("help request")
        verbose_name_plural = _("help requests")
        constraints = [
            models.UniqueConstraint(fields=["activity", "code"], name="help_request_unique_code"),
            models.CheckConstraint(
                condition=models.Q(helpers__lte=models.F("needed")),
                name="help_request_not_over_needed",
            ),
            # One open request per customer and activity: asking again returns it.
            models.UniqueConstraint(
                fields=["activity", "initiator"],
                condition=models.Q(state="open"),
                name="help_request_one_open",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=models.Q(state="open"),
                name="help_request_open_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @transition(field=state, source=HelpRequestState.OPEN, target=HelpRequestState.FULFILLED)
    def fulfil(self) -> None:
        pass

    @transition(field=state, source=HelpRequestState.OPEN, target=HelpRequestState.EXPIRED)
    def expire(self) -> None:
        pass


class Assist(models.Model):
    """One friend's help on one request: counted once (unique), never by the initiator."""

    request = models.ForeignKey(
        HelpRequest, on_delete=models.CASCADE, related_name="assists", verbose_name=_("request")
    )
    helper = models.ForeignKey(
        "segments.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("helper")
    )
    # The request's initiator, copied so a constraint can refuse self-help.
    initiator = models.ForeignKey(
        "segments.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("initiator")
    )
    created_at = models.DateTimeField(_("helped at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("assist")
        verbose_name_plural = _("assists")
        constraints = [
            models.UniqueConstraint(fields=["request", "helper"], name="assist_once_per_helper"),
            models.CheckConstraint(
                condition=~models.Q(helper=models.F("initiator")), name="assist_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.helper_id} helped {self.request_id}"

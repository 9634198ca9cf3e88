import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition


class EventState(models.TextChoices):
    PENDING = "pending", _("pending")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class EventFailure(models.TextChoices):
    """Why an event ended `failed`: it is then a dead letter an operator can run again."""

    ATTEMPTS_EXHAUSTED = "attempts_exhausted", _("no attempt succeeded, attempts used up")
    RETRIES_EXHAUSTED = "retries_exhausted", _("database errors on every retry")


class Event(FSMModelMixin, models.Model):
    """One accepted storefront call (or one event a chain emitted); also the outbox row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(
        "core.StorefrontKey",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("API client"),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=255)
    request_hash = models.CharField(_("request hash"), max_length=64)
    channel = models.ForeignKey(
        "activities.Channel",
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("channel"),
    )
    customer = models.ForeignKey(
        "segments.Customer",
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("customer"),
    )
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="targeted_events",
        verbose_name=_("only for activity"),
    )
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    parent_run = models.ForeignKey(
        "activities.ChainRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="emitted_events",
        verbose_name=_("emitted by run"),
    )
    depth = models.PositiveSmallIntegerField(_("emit depth"), default=0)
    state = FSMField(
        _("status"), default=EventState.PENDING, choices=EventState.choices, protected=True
    )
    attempts = models.PositiveIntegerField(
        _("processing attempts"),
        default=0,
        help_text=_("Attempts started so far; at the limit the event fails as a dead letter."),
    )
    awaited = models.BooleanField(
        _("a request waits for it"),
        default=False,
        editable=False,
        help_text=_(
            "A storefront request asked to wait for the result (Prefer: wait); the worker then "
            "says when the event is finished."
        ),
    )
    error = models.TextField(_("error"), blank=True)
    failure_reason = models.CharField(
        _("failure reason"), max_length=32, blank=True, choices=EventFailure.choices
    )
    created_at = models.DateTimeField(_("accepted at"), auto_now_add=True)
    dispatched_at = models.DateTimeField(_("last dispatched at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        permissions = [("rerun_event", _("Can run a failed event again"))]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "idempotency_key"],
                condition=models.Q(client__isnull=False),
                name="event_unique_client_key",
            ),
            # Emitted events have no client; their key is derived from the emitting run.
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=models.Q(client__isnull=True),
                name="event_unique_internal_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["dispatched_at"],
                condition=models.Q(state__in=["pending", "running"]),
                name="event_unfinished_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.id}"

    @transition(
        field=state, source=[EventState.PENDING, EventState.RUNNING], target=EventState.RUNNING
    )
    def start(self) -> None:
        pass

    @transition(
        field=state, source=[EventState.PENDING, EventState.RUNNING], target=EventState.DONE
    )
    def finish(self) -> None:
        self.error = ""

    @transition(
        field=state, source=[EventState.PENDING, EventState.RUNNING], target=EventState.FAILED
    )
    def fail(self, error: str = "") -> None:
        self.error = error

"""What an approver approved is what runs (DESIGN invariant 9).

Approval fingerprints the activity's whole effective configuration: the activity itself, its
benefits, its template's chains and steps (processors, configs, conditions), the channels they
listen to (payload schemas), its audience segment (rule, and for a static list its members) and
the notification templates its steps send. Scheduling and launching check the fingerprint here,
in the service, so no path around the admin (a command, a script, beat) skips it; any change to
any of those rows after approval makes the activity unapproved again.

Who did what is read from django-reversion's revisions: every admin edit is a revision with its
user, and submitting and approving are revisions marked by their comment. An approver may approve
only a submitted activity that nobody edited since, never one they edited last or submitted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import reversion
from django.db import models
from django.db.models import Count, Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from reversion.models import Version

from activities.models import Activity, ActivityApproval, Benefit, Chain, ChainStep, Channel
from core.errors import GambitError
from notifications.models import NotificationTemplate
from segments.models import Segment, SegmentMember

# Columns that move while an activity runs, or are bookkeeping: not configuration.
RUNTIME_COLUMNS = frozenset(
    {
        "id",
        "state",
        "state_reason",
        "budget_remaining",
        "stock_remaining",
        "config_version",
        "version",
        "member_count",
        "counted_at",
        "snapshot_at",
        "created_at",
        "updated_at",
        # The window moves under its own permission (scheduling is an approver's action), so a
        # reschedule does not void the approval of what the activity runs.
        "starts_at",
        "ends_at",
    }
)


# Stored untranslated as the revision comment; the history page translates them when shown.
SUBMITTED = gettext_noop("Submitted for approval")
APPROVED = gettext_noop("Approved")


class NotApproved(GambitError):
    code = "not_approved"
    http_status = 409


def _columns(instance: models.Model) -> dict[str, Any]:
    return {
        field.attname: field.value_to_string(instance)
        for field in instance._meta.concrete_fields
        if field.name not in RUNTIME_COLUMNS
    }


def effective_configuration(*, activity: Activity) -> dict[str, Any]:
    """Every row the activity will run on, as plain data (what the fingerprint hashes)."""
    chains = list(Chain.objects.filter(template_id=activity.template_id).order_by("pk"))
    steps = ChainStep.objects.filter(chain__in=chains).order_by("chain_id", "position", "pk")
    template_codes = sorted(
        {code for step in steps for code in _templates_sent(step.processor, step.config)}
    )
    configuration: dict[str, Any] = {
        "activity": _columns(activity),
        "template": _columns(activity.template),
        "chains": [_columns(chain) for chain in chains],
        "steps": [_columns(step) for step in steps],
        "channels": [
            _columns(channel)
            for channel in Channel.objects.filter(
                pk__in=[chain.channel_id for chain in chains]
            ).order_by("pk")
        ],
        "benefits": [
            _columns(benefit)
            for benefit in Benefit.objects.filter(activity=activity).order_by("pk")
        ],
        "notification_templates": [
            _columns(template)
            for template in NotificationTemplate.objects.filter(code__in=template_codes).order_by(
                "pk"
            )
        ],
        "segment": None,
    }
    if activity.segment_id is not None:
        segment = Segment.objects.get(pk=activity.segment_id)
        members = SegmentMember.objects.filter(segment=segment).aggregate(
            count=Count("pk"), customers=Sum("customer_id")
        )
        configuration["segment"] = {**_columns(segment), "members": members}
    return configuration


def _templates_sent(processor: str, config: Any) -> set[str]:
    """Notification template codes a step sends: a `notify` step's own, or those of the
    `notify` steps inside a split step's variants."""
    if not isinstance(config, dict):
        return set()
    if processor == "notify" and "template" in config:
        return {str(config["template"])}
    if processor == "split":
        return {
            code
            for variant in config.get("variants") or []
            if isinstance(variant, dict)
            for inner in variant.get("steps") or []
            if isinstance(inner, dict)
            for code in _templates_sent(str(inner.get("processor", "")), inner.get("config"))
        }
    return set()


def configuration_fingerprint(*, activity: Activity) -> str:
    canonical = json.dumps(
        effective_configuration(activity=activity),
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_approval(*, activity: Activity, approved_by: Any = None, bypass: str = "") -> None:
    """Approve the configuration as it is now: an approver's decision, or a bypass on record
    (`bypass` says who skipped review, and how)."""
    if approved_by is None and not bypass:
        raise ValueError("An approval names its approver or the bypass.")
    ActivityApproval.objects.create(
        activity=activity,
        fingerprint=configuration_fingerprint(activity=activity),
        approved_by=approved_by,
        bypass=bypass,
    )


def approval_problem(*, activity: Activity) -> str | None:
    """Why the activity may not be scheduled or launched now, or None when its configuration is
    exactly what was approved last."""
    approval = ActivityApproval.objects.filter(activity=activity).first()
    if approval is None:
        return _("This activity has not been approved.")
    if approval.fingerprint != configuration_fingerprint(activity=activity):
        return _(
            "This activity's configuration (its template, chains, benefits, segment, channels "
            "or notification templates) changed after it was approved; it needs a new approval."
        )
    return None


def ensure_approved(*, activity: Activity) -> None:
    if (problem := approval_problem(activity=activity)) is not None:
        raise NotApproved(problem)


@dataclass(frozen=True)
class ApprovalStatus:
    status: str  # "editing" | "submitted" | "approved"
    last_editor_id: int | None
    submitted_by_id: int | None
    approved_by_id: int | None


def approval_status(activity: Activity) -> ApprovalStatus:
    """Where the activity stands, from its newest revisions back to its last edit. An approval
    whose configuration changed since (a chain, a segment, a channel...) counts as an edit."""
    submitted_by = approved_by = None
    status = "editing"
    for comment, user_id in (
        Version.objects.get_for_object(activity)
        .select_related("revision")
        .values_list("revision__comment", "revision__user_id")
    ):
        if comment == APPROVED:
            if status == "editing":
                status = "approved"
            approved_by = approved_by or user_id
            continue
        if comment == SUBMITTED:
            if status == "editing":
                status = "submitted"
            submitted_by = submitted_by or user_id
            continue
        return _checked(ApprovalStatus(status, user_id, submitted_by, approved_by), activity)
    return _checked(ApprovalStatus(status, None, submitted_by, approved_by), activity)


def _checked(status: ApprovalStatus, activity: Activity) -> ApprovalStatus:
    if status.status == "approved" and approval_problem(activity=activity) is not None:
        return ApprovalStatus("editing", None, None, None)
    return status


def submit_for_approval(*, activity: Activity, user: Any) -> None:
    _record_marker(activity=activity, user=user, marker=SUBMITTED)


def approve(*, activity: Activity, user: Any) -> None:
    """The approver's yes: a revision marker for the history, and the fingerprint."""
    _record_marker(activity=activity, user=user, marker=APPROVED)
    record_approval(activity=activity, approved_by=user)


def _record_marker(*, activity: Activity, user: Any, marker: str) -> None:
    with reversion.create_revision():
        reversion.set_user(user)
        reversion.set_comment(marker)
        reversion.add_to_revision(activity)


def submit_refusal(*, activity: Activity) -> str | None:
    if approval_status(activity).status != "editing":
        return _("This activity is already waiting for approval or approved.")
    return None


def approve_refusal(*, activity: Activity, user: Any) -> str | None:
    status = approval_status(activity)
    if status.status != "submitted":
        return _("Only an activity submitted for approval, and unchanged since, can be approved.")
    if user.pk in (status.last_editor_id, status.submitted_by_id):
        return _(
            "Four eyes: you edited or submitted this activity, so someone else must approve it."
        )
    return None


def schedule_refusal(*, activity: Activity) -> str | None:
    """Why the back-office refuses to schedule: the configuration check of `ensure_approved`, and
    the review flow (an admin edit recorded after the approval needs a new one)."""
    if (problem := approval_problem(activity=activity)) is not None:
        return problem
    if approval_status(activity).status != "approved":
        return _("Schedule an activity only after it has been approved, with no edit since.")
    return None

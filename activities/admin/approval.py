"""Four eyes for activities, read from django-reversion's revisions (no model of our own).

Every edit made in the admin is a revision with its user. Submitting for approval and
approving are revisions too, marked by their comment. An approver may approve only a submitted
activity that nobody edited since, and never one they edited last or submitted themselves;
scheduling needs an approval that no edit followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import reversion
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop
from reversion.models import Version

# Stored untranslated as the revision comment; the history page translates them when shown.
SUBMITTED = gettext_noop("Submitted for approval")
APPROVED = gettext_noop("Approved")


@dataclass(frozen=True)
class ApprovalStatus:
    status: str  # "editing" | "submitted" | "approved"
    last_editor_id: int | None
    submitted_by_id: int | None
    approved_by_id: int | None


def approval_status(activity: Any) -> ApprovalStatus:
    """Where the activity stands, from its newest revisions back to its last edit."""
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
        return ApprovalStatus(status, user_id, submitted_by, approved_by)
    return ApprovalStatus(status, None, submitted_by, approved_by)


def record_marker(*, activity: Any, user: Any, marker: str) -> None:
    with reversion.create_revision():
        reversion.set_user(user)
        reversion.set_comment(marker)
        reversion.add_to_revision(activity)


def submit_refusal(activity: Any, user: Any) -> str | None:
    if approval_status(activity).status != "editing":
        return str(_("This activity is already waiting for approval or approved."))
    return None


def approve_refusal(activity: Any, user: Any) -> str | None:
    status = approval_status(activity)
    if status.status != "submitted":
        return str(
            _("Only an activity submitted for approval, and unchanged since, can be approved.")
        )
    if user.pk in (status.last_editor_id, status.submitted_by_id):
        return str(
            _("Four eyes: you edited or submitted this activity, so someone else must approve it.")
        )
    return None


def schedule_refusal(activity: Any, user: Any) -> str | None:
    if approval_status(activity).status != "approved":
        return str(_("Schedule an activity only after it has been approved, with no edit since."))
    return None

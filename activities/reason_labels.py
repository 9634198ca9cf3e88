"""Why a run stopped or a step was skipped, in the operator's words.

Runs store reason codes (stable, for the API and filters); the admin shows these labels.
A reason an operator wrote into a rule_check step is shown as written.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from activities.engine import registry

REASON_LABELS: dict[str, str | Promise] = {
    "rule_not_met": _("the rule was not met"),
    "condition_false": _("its condition was false"),
    "limit_reached": _("participation limit reached"),
    "day_limit_reached": _("daily limit reached"),
    "customer_limit_reached": _("limit per customer reached"),
    "activity_limit_reached": _("limit for the whole activity reached"),
    "not_in_segment": _("customer not in the audience"),
    "outside_window": _("outside the activity's time window"),
    "activity_not_running": _("activity not running"),
    "out_of_stock": _("out of stock"),
    "budget_exhausted": _("budget used up"),
    "already_entered": _("already entered"),
    "already_counted": _("already counted"),
    "already_helped": _("already helped"),
    "already_in_team": _("already in a team"),
    "invalid_score": _("invalid score"),
    "score_missing": _("score missing"),
    "not_a_new_customer": _("not a new customer"),
    "own_subject": _("cannot count for oneself"),
    "self_help": _("cannot help oneself"),
    "request_expired": _("help request expired"),
    "request_fulfilled": _("help request already fulfilled"),
    "request_not_found": _("help request not found"),
    "subject_limit_reached": _("limit for this subject reached"),
    "team_expired": _("team expired"),
    "team_full": _("team full"),
    "team_not_found": _("team not found"),
    "unknown_subject": _("unknown subject"),
    "wait_inside_variant": _("a wait step inside an A/B variant"),
    "entered_recently": _("entered recently (once per window)"),
    "journey_in_progress": _("the previous run of this journey is still waiting"),
    "exited": _("ended by an exit rule"),
    "activity_ended": _("the activity ended"),
    "cancelled_by_operator": _("cancelled by an operator"),
    "match_key_missing": _("the event lacks a value the wait needs"),
    "event": _("the awaited event came"),
    "timeout": _("timed out"),
    "elapsed": _("the wait was over"),
    "rejected": _("rejected"),
    "already_checked_in": _("already checked in today"),
    "nothing_to_make_up": _("no missed day to make up"),
    "team_missing": _("the event names no team"),
    "subject_missing": _("the event names no subject"),
    "request_missing": _("the event names no help request"),
    "invalid_recipient": _("the customer to send the event to is not valid"),
    "no_prize": _("the draw gave no prize"),
    "score_out_of_range": _("score out of range"),
    "run_not_saved": _("the run was not saved"),
    "unknown_template": _("the notification template does not exist"),
    "render_error": _("the notification could not be rendered"),
    "no_recipient": _("no customer to send the event to"),
    "too_many_recipients": _("too many customers for one step"),
    "emit_depth_exceeded": _("events chained too deep (a loop?)"),
    "unknown_channel": _("the channel does not exist"),
    "unknown_benefit": _("the activity has no such benefit"),
}

# Codes built from a benefit's code or a processor's key (see grants, lottery_draw,
# checkin_streak and the runner): the label names the benefit or the step.
NOT_ENOUGH = "not_enough_"
LIMIT_REACHED = "_limit_reached"
STEP_ERROR = "_error"


def reason_label(code: str) -> str:
    """The label of a reason code; a reason the operator wrote is returned as is."""
    if not code:
        return ""
    label = REASON_LABELS.get(code)
    if label is not None:
        return str(label)
    if code.startswith(NOT_ENOUGH):
        return _("not enough %(benefit)s") % {"benefit": code.removeprefix(NOT_ENOUGH)}
    if code.endswith(LIMIT_REACHED):
        return _("limit per customer of %(benefit)s reached") % {
            "benefit": code.removesuffix(LIMIT_REACHED)
        }
    processor = registry.get(code.removesuffix(STEP_ERROR)) if code.endswith(STEP_ERROR) else None
    if processor is not None:
        return _("the step %(step)s failed") % {"step": processor.label}
    return code

"""An activity's own settings and its benefits.

Every write locks the activity row and bumps `Activity.config_version` in its transaction, so
the next event reads the new configuration. An activity that passed `check_activity` (scheduled,
running, paused) keeps passing it; an ended or archived one no longer changes.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.utils.translation import gettext as _

from activities.engine.errors import ConfigError
from activities.models import (
    COUPON_TERMS,
    Activity,
    ActivityState,
    Benefit,
    CodeSource,
    Grant,
    StrategyTemplate,
)
from activities.services.lifecycle import reschedule_activity
from activities.services.readiness import CHECKED_STATES, check_activity, timezone_errors
from segments.models import Segment

from .errors import model_errors, refuse

CLOSED_STATES = (ActivityState.ENDED, ActivityState.ARCHIVED)


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


def _bump_activity(activity: Activity) -> None:
    Activity.objects.filter(pk=activity.pk).update(config_version=F("config_version") + 1)
    activity.refresh_from_db(fields=["config_version"])


def _refuse_if_closed(activity: Activity) -> None:
    if activity.state in CLOSED_STATES:
        message = _("Activity %(code)s has %(state)s; it can no longer be changed.") % {
            "code": activity.code,
            "state": activity.state,
        }
        raise refuse(message, [ConfigError("", message, "activity_closed")])


def _keep_checked(activity: Activity) -> None:
    """A scheduled, running or paused activity passed check_activity; refuse edits that break it."""
    if activity.state in CHECKED_STATES:
        errors = check_activity(activity=activity)
        if errors:
            raise refuse(_("The change would leave the activity unable to run."), errors)


def _issued(benefit: Benefit) -> int:
    return Grant.objects.filter(benefit=benefit).aggregate(total=Sum("quantity"))["total"] or 0


def save_benefit(
    *,
    activity: Activity,
    code: str,
    kind: str,
    name: str = "",
    value: Decimal | None = None,
    stock_total: int | None = None,
    per_customer_limit: int | None = None,
    benefit: Benefit | None = None,
    coupon_terms: dict[str, Any] | None = None,
) -> Benefit:
    """Create or update a benefit of the activity; bumps the activity's config version.

    Stock moves by a conditional UPDATE (granted + remaining == stock always holds): lowering
    it below what was already granted is refused. A benefit that has grants keeps its code and
    kind (limits and balances are counted by code)."""
    if benefit is not None and benefit.activity_id != activity.pk:
        message = _("The benefit belongs to another activity.")
        raise refuse(message, [ConfigError("activity", message, "wrong_activity")])
    with transaction.atomic():
        activity = Activity.objects.select_for_update().get(pk=activity.pk)
        _refuse_if_closed(activity)
        old = Benefit.objects.select_for_update().get(pk=benefit.pk) if benefit else None
        # Coupon codes and validity (COUPON_TERMS); a pool's stock is its free codes,
        # which only an upload changes.
        terms = {name: getattr(old, name) for name in COUPON_TERMS} if old else {}
        terms.update(coupon_terms or {})
        if terms.get("code_source") == CodeSource.POOL:
            stock_total = old.stock_total if old and old.stock_total is not None else 0
        candidate = Benefit(
            pk=old.pk if old else None,
            activity=activity,
            code=code,
            kind=kind,
            name=name,
            value=value,
            stock_total=stock_total,
            stock_remaining=stock_total,
            per_customer_limit=per_customer_limit,
            **terms,
        )
        errors = model_errors(candidate, exclude=["stock_remaining"], unique=False)
        taken = Benefit.objects.filter(activity=activity, code=code)
        if old is not None:
            taken = taken.exclude(pk=old.pk)
        if taken.exists():
            errors.append(
                ConfigError(
                    "code",
                    _("The activity already has a benefit %(code)r.") % {"code": code},
                    "duplicate_code",
                )
            )
        renamed = old is not None and (code != old.code or kind != old.kind)
        if renamed and Grant.objects.filter(benefit=old).exists():
            errors.append(
                ConfigError(
                    "kind" if old is not None and code == old.code else "code",
                    _("This benefit has been granted; its code and kind can no longer change."),
                    "benefit_in_use",
                )
            )
        if errors:
            raise refuse(_("The benefit cannot be saved."), errors)
        if old is None:
            candidate.save()
            benefit = candidate
        else:
            assert benefit is not None
            _move_stock(activity=activity, old=old, new_total=stock_total)
            Benefit.objects.filter(pk=old.pk).update(
                code=code,
                kind=kind,
                name=name,
                value=value,
                per_customer_limit=per_customer_limit,
                **terms,
            )
            benefit.refresh_from_db()
        _keep_checked(activity)
        _bump_activity(activity)
    return benefit


def _move_stock(*, activity: Activity, old: Benefit, new_total: int | None) -> None:
    if old.stock_total == new_total:
        return
    too_low = ConfigError(
        "stock_total",
        _("More than that has already been granted."),
        "stock_below_granted",
    )
    if old.stock_total is not None and new_total is not None:
        delta = new_total - old.stock_total
        moved = Benefit.objects.filter(pk=old.pk, stock_remaining__gte=-delta).update(
            stock_total=new_total, stock_remaining=F("stock_remaining") + delta
        )
        if not moved:
            raise refuse(_("The benefit cannot be saved."), [too_low])
        return
    if activity.state == ActivityState.RUNNING:
        # Unlimited stock is never counted, so switching needs a count no run is changing.
        message = _("Pause the activity before switching between limited and unlimited stock.")
        raise refuse(message, [ConfigError("stock_total", message, "activity_running")])
    if new_total is None:
        Benefit.objects.filter(pk=old.pk).update(stock_total=None, stock_remaining=None)
        return
    issued = _issued(old)
    if issued > new_total:
        raise refuse(_("The benefit cannot be saved."), [too_low])
    Benefit.objects.filter(pk=old.pk).update(
        stock_total=new_total, stock_remaining=new_total - issued
    )


def delete_benefit(*, benefit: Benefit) -> None:
    with transaction.atomic():
        activity = Activity.objects.select_for_update().get(pk=benefit.activity_id)
        _refuse_if_closed(activity)
        if Grant.objects.filter(benefit=benefit).exists():
            message = _("This benefit has been granted; it cannot be deleted.")
            raise refuse(message, [ConfigError("", message, "benefit_in_use")])
        benefit.delete()
        _keep_checked(activity)
        _bump_activity(activity)


def update_activity(
    *,
    activity: Activity,
    name: str | _Unset = UNSET,
    template: StrategyTemplate | _Unset = UNSET,
    timezone: str | _Unset = UNSET,
    starts_at: dt.datetime | _Unset | None = UNSET,
    ends_at: dt.datetime | _Unset | None = UNSET,
    segment: Segment | _Unset | None = UNSET,
    budget_total: Decimal | _Unset | None = UNSET,
    on_exhausted: str | _Unset = UNSET,
) -> Activity:
    """Change an activity's own settings (only the arguments given); bumps its config version.

    The template and timezone change only while the activity is a draft. The window of a
    scheduled, running or paused activity moves through lifecycle.reschedule_activity, which
    moves its beat tasks too (and refuses moving the start of a started activity). The budget
    may change at any time by a conditional UPDATE that never goes below what was spent.
    """
    changes = {
        field: value
        for field, value in {
            "name": name,
            "template": template,
            "timezone": timezone,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "segment": segment,
            "on_exhausted": on_exhausted,
        }.items()
        if value is not UNSET
    }
    with transaction.atomic():
        activity = Activity.objects.select_for_update().get(pk=activity.pk)
        _refuse_if_closed(activity)
        errors: list[ConfigError] = []
        if activity.state != ActivityState.DRAFT:
            for field in ("template", "timezone"):
                if field in changes and changes[field] != getattr(activity, field):
                    errors.append(
                        ConfigError(
                            field,
                            _(
                                "The activity is %(state)s; its template and timezone change "
                                "only while it is a draft (unschedule it first)."
                            )
                            % {"state": activity.state},
                            "activity_not_draft",
                        )
                    )
        if "timezone" in changes:
            errors.extend(timezone_errors(changes["timezone"]))
        window = {
            field: changes.pop(field, getattr(activity, field))
            for field in ("starts_at", "ends_at")
        }
        for field, value in window.items():
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                errors.append(ConfigError(field, _("The time needs a timezone."), "naive_datetime"))
        if not errors and None not in window.values() and window["starts_at"] >= window["ends_at"]:
            errors.append(
                ConfigError(
                    "ends_at", _("The activity must end after it starts."), "invalid_window"
                )
            )
        if errors:
            raise refuse(_("The activity cannot be changed."), errors)
        moved = any(window[field] != getattr(activity, field) for field in window)
        if moved and activity.state == ActivityState.DRAFT:
            changes.update(window)
        elif moved:
            activity = reschedule_activity(activity=activity, **window)
        for field, value in changes.items():
            setattr(activity, field, value)
        errors = model_errors(activity, exclude=["budget_total", "budget_remaining", "state"])
        if errors:
            raise refuse(_("The activity cannot be changed."), errors)
        if changes:
            activity.save(update_fields=[*changes, "updated_at"])
        if budget_total is not UNSET:
            _move_budget(activity=activity, new_total=budget_total)
        _keep_checked(activity)
        _bump_activity(activity)
    return activity


def _move_budget(*, activity: Activity, new_total: Decimal | None) -> None:
    if activity.budget_total == new_total:
        return
    if new_total is not None:
        try:
            Activity._meta.get_field("budget_total").clean(new_total, activity)
        except ValidationError as error:
            raise refuse(
                _("The activity cannot be changed."),
                [
                    ConfigError("budget_total", text, error.code or "invalid")
                    for text in error.messages
                ],
            ) from None
        if new_total < 0:
            message = _("The budget cannot be negative.")
            raise refuse(message, [ConfigError("budget_total", message, "min_value")])
    too_low = ConfigError(
        "budget_total", _("More than that has already been spent."), "budget_below_spent"
    )
    if activity.budget_total is not None and new_total is not None:
        delta = new_total - activity.budget_total
        moved = Activity.objects.filter(pk=activity.pk, budget_remaining__gte=-delta).update(
            budget_total=new_total, budget_remaining=F("budget_remaining") + delta
        )
        if not moved:
            raise refuse(_("The activity cannot be changed."), [too_low])
    elif activity.state == ActivityState.RUNNING:
        message = _("Pause the activity before adding or removing its budget.")
        raise refuse(message, [ConfigError("budget_total", message, "activity_running")])
    elif new_total is None:
        Activity.objects.filter(pk=activity.pk).update(budget_total=None, budget_remaining=None)
    else:
        spent = Grant.objects.filter(activity=activity).aggregate(total=Sum("value"))["total"] or 0
        if spent > new_total:
            raise refuse(_("The activity cannot be changed."), [too_low])
        Activity.objects.filter(pk=activity.pk).update(
            budget_total=new_total, budget_remaining=new_total - spent
        )
    activity.refresh_from_db(fields=["budget_total", "budget_remaining"])

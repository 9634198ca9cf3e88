"""Issuing a benefit to every customer of a segment, set-based, in pages, exactly once.

A page is one transaction under the issue's row lock: the next keyset page of the segment
after `cursor`, the customers who already hold the benefit set aside, the others counted
against the benefit's per-customer limit (the counter a chain's grant moves, so a coupon from
a segment and one from an event share it), stock and budget taken for as many as they cover
(counter, benefit and activity rows locked in the engine's order, so no deadlock with it),
the grants inserted from arrays in one statement (`issue:<job>:<customer>` keys, unique), the
others recorded as skipped with why, the cursor moved. A worker killed midway loses its open
page only, and the next run starts from the committed cursor; two runs at once queue on the
row lock and the second finds the page done. A beat sweep restarts issues whose worker died.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import can_proceed, has_transition_perm
from django_fsm_log.helpers import FSMLogDescriptor
from psycopg import sql

from activities import enqueue
from activities.engine.cache import coupon_spec
from activities.models import (
    Activity,
    ActivityState,
    Benefit,
    BenefitIssue,
    BenefitKind,
    Grant,
    GrantState,
    IssueOutcome,
    IssueSkip,
    IssueState,
    ParticipationCounter,
)
from activities.services import approvals, coupon_codes, coupon_notices
from core.errors import GambitError, InvalidConfiguration, TransitionNotAllowed
from segments.models import Segment
from segments.selectors import segment_customers

FINISHED_ACTIVITY_STATES = (ActivityState.ENDED, ActivityState.ARCHIVED)


class CodeCollision(Exception):
    """A generated code was taken; the page is rolled back and drawn again."""


@dataclass(frozen=True)
class IssuePlan:
    audience: int
    stock_remaining: int | None
    will_issue: int
    budget_needed: Decimal | None
    budget_remaining: Decimal | None


def plan_issue(*, benefit: Benefit, segment: Segment) -> IssuePlan:
    """What issuing to the segment now would take: one unit per member, as far as stock and
    budget reach (customers who already hold one are not subtracted: an upper bound)."""
    audience = segment_customers(segment_id=segment.pk).count()
    will_issue = audience
    if benefit.stock_total is not None:
        will_issue = min(will_issue, benefit.stock_remaining or 0)
    activity = benefit.activity
    budget_needed = None
    if activity.budget_total is not None and benefit.value:
        affordable = int((activity.budget_remaining or 0) // benefit.value)
        will_issue = min(will_issue, affordable)
        budget_needed = benefit.value * will_issue
    return IssuePlan(
        audience=audience,
        stock_remaining=benefit.stock_remaining if benefit.stock_total is not None else None,
        will_issue=will_issue,
        budget_needed=budget_needed,
        budget_remaining=activity.budget_remaining if activity.budget_total is not None else None,
    )


def _check_issuable(benefit: Benefit) -> None:
    if benefit.kind == BenefitKind.CHANCE or benefit.stackable:
        raise InvalidConfiguration(
            _("Only coupons, prizes and cash can be issued to a segment, one per customer.")
        )
    if benefit.activity.state in FINISHED_ACTIVITY_STATES:
        raise InvalidConfiguration(_("The activity has ended; nothing more can be issued from it."))
    approvals.ensure_approved(activity=benefit.activity)


def issue_refusal(*, benefit: Benefit, notification_template: Any = None) -> dict[str, str]:
    """Why this issue cannot be requested, by form field (empty when it can)."""
    problems = {}
    try:
        _check_issuable(benefit)
    except GambitError as error:
        problems["benefit"] = error.message
    if notification_template is not None:
        try:
            coupon_notices.check_template(notification_template)
        except GambitError as error:
            problems["notification_template"] = error.message
    return problems


def request_issue(
    *,
    benefit: Benefit,
    segment: Segment,
    notification_template: Any = None,
    by: Any = None,
) -> BenefitIssue:
    """Record the operator's request; it issues nothing until someone else approves it."""
    _check_issuable(benefit)
    if notification_template is not None:
        coupon_notices.check_template(notification_template)
    return BenefitIssue.objects.create(
        activity=benefit.activity,
        benefit=benefit,
        segment=segment,
        notification_template=notification_template,
        requested_by=by if by is not None and by.is_authenticated else None,
        audience=segment_customers(segment_id=segment.pk).count(),
    )


def approve_issue(
    *, issue: BenefitIssue, by: Any = None, bypass: str = "", start: bool = True
) -> BenefitIssue:
    """Four eyes, as for activities: the approver is not the requester. `bypass` records a
    deliberate skip of review (the command line). Starts the issue on a worker after commit
    unless `start` is False (the caller runs it itself)."""
    with transaction.atomic():
        locked = BenefitIssue.objects.select_for_update().get(pk=issue.pk)
        if not can_proceed(locked.approve, check_conditions=False):
            raise TransitionNotAllowed(
                _("This issue is %(state)s; only a requested issue can be approved.")
                % {"state": locked.get_state_display()}
            )
        if not bypass:
            if by is None or not has_transition_perm(locked.approve, by):
                raise PermissionDenied(_("You are not allowed to approve issues to segments."))
            if locked.requested_by_id == by.pk:
                raise TransitionNotAllowed(
                    _("Four eyes: you requested this issue, so someone else must approve it.")
                )
        _check_issuable(Benefit.objects.select_related("activity").get(pk=locked.benefit_id))
        with FSMLogDescriptor(locked, "by", by if bypass == "" else None):
            locked.approve()
        locked.approved_by = by if not bypass else None
        locked.bypass = bypass
        locked.save()
        if start:
            enqueue.issue_benefit_on_commit(issue_id=locked.pk)
    return locked


def cancel_issue(*, issue: BenefitIssue, by: Any = None) -> BenefitIssue:
    with transaction.atomic():
        locked = BenefitIssue.objects.select_for_update().get(pk=issue.pk)
        if not can_proceed(locked.cancel):
            raise TransitionNotAllowed(_("Only an issue waiting for approval can be cancelled."))
        with FSMLogDescriptor(locked, "by", by):
            locked.cancel()
        locked.finished_at = timezone.now()
        locked.save()
    return locked


@dataclass(frozen=True)
class PageResult:
    issued: int
    skipped: int
    done: bool


def issue_next_page(*, issue_id: int, page_size: int | None = None) -> PageResult | None:
    """Issue one page; None when the issue is not approved (not yet, or finished)."""
    page_size = page_size or settings.GAMBIT_ISSUE_PAGE_SIZE
    for _attempt in range(3):
        try:
            return _page(issue_id=issue_id, page_size=page_size)
        except CodeCollision:
            continue
    raise RuntimeError("Three pages in a row drew a code that exists; check the code length.")


def _page(*, issue_id: int, page_size: int) -> PageResult | None:
    with transaction.atomic():
        issue = (
            BenefitIssue.objects.select_for_update(of=("self",))
            .select_related("benefit", "activity", "notification_template")
            .filter(pk=issue_id)
            .first()
        )
        if issue is None or issue.state != IssueState.APPROVED:
            return None
        # A page is idempotent (its cursor commits with its grants), so its commit need not
        # wait for the WAL flush: a page lost in a database crash is issued again.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        now = timezone.now()
        page = (
            segment_customers(segment_id=issue.segment_id, now=issue.created_at)
            .filter(pk__gt=issue.cursor)
            .order_by("pk")
            .values_list("pk", flat=True)[:page_size]
        )
        ids = list(page)
        held = _holding(benefit=issue.benefit, customer_ids=ids)
        unheld = [pk for pk in ids if pk not in held]
        # The limit is counted before stock and budget are locked, in the order a chain run
        # takes them (counter, benefit, activity); those the stock then misses are uncounted.
        counted = _count_towards_limit(issue=issue, customer_ids=unheld)
        eligible = [pk for pk in unheld if pk in counted]
        count, short_of = _take(issue=issue, wanted=len(eligible))
        _uncount(issue=issue, customer_ids=eligible[count:])
        granted = _insert_grants(issue=issue, customer_ids=eligible[:count], now=now)
        skips: list[tuple[int, str]] = [(pk, IssueOutcome.ALREADY_HELD) for pk in ids if pk in held]
        skips += [(pk, IssueOutcome.LIMIT_REACHED) for pk in unheld if pk not in counted]
        skips += [(pk, short_of) for pk in eligible[count:]]
        _record_skips(issue=issue, skips=skips)
        if issue.notification_template is not None and granted:
            coupon_notices.queue_notices(issue=issue, granted=granted, now=now)
        done = len(ids) < page_size
        BenefitIssue.objects.filter(pk=issue.pk).update(
            cursor=ids[-1] if ids else issue.cursor,
            issued=issue.issued + count,
            skipped=issue.skipped + len(skips),
            updated_at=now,
        )
        if done:
            issue.refresh_from_db()
            with FSMLogDescriptor(issue, "description", f"{issue.issued} issued"):
                issue.complete()
            issue.finished_at = now
            issue.save(update_fields=["state", "finished_at", "updated_at"])
        return PageResult(issued=count, skipped=len(skips), done=done)


def _holding(*, benefit: Benefit, customer_ids: list[int]) -> set[int]:
    """Who in the page already holds an unused one. One probe of the (benefit, customer)
    index per page member: the cost follows the page, not the benefit's grants, which grow
    with every page of the issue."""
    if not customer_ids:
        return set()
    statement = sql.SQL(
        "SELECT page.id FROM unnest(%s::bigint[]) AS page(id) WHERE EXISTS ("
        " SELECT 1 FROM {grants} AS g"
        " WHERE g.{customer} = page.id AND g.{benefit} = %s AND g.{state} = %s)"
    ).format(
        grants=sql.Identifier(Grant._meta.db_table),
        customer=_column("customer"),
        benefit=_column("benefit"),
        state=_column("state"),
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(None), [customer_ids, benefit.pk, GrantState.ISSUED])
        return {row[0] for row in cursor.fetchall()}


def _limit_counter() -> dict[str, Any]:
    """The counter a chain's grant of this benefit moves (`grants.issue_grant`): a coupon
    issued to a segment is that customer's grant of the benefit as much as an event's."""
    meta = ParticipationCounter._meta
    return {
        "table": sql.Identifier(meta.db_table),
        "activity": sql.Identifier(meta.get_field("activity").column),
        "scope": sql.Identifier(meta.get_field("scope").column),
        "key": sql.Identifier(meta.get_field("key").column),
        "period": sql.Identifier(meta.get_field("period").column),
        "count": sql.Identifier(meta.get_field("count").column),
    }


def _limit_values(issue: BenefitIssue, customer_ids: list[int]) -> dict[str, Any]:
    return {
        "activity": issue.activity_id,
        "key": f"benefit:{issue.benefit.code}",
        "period": "all",
        "scopes": [f"c:{pk}" for pk in customer_ids],
        "limit": issue.benefit.per_customer_limit,
    }


def _count_towards_limit(*, issue: BenefitIssue, customer_ids: list[int]) -> set[int]:
    """Count one grant of the benefit for each customer still under its per-customer limit,
    in one upsert; returns who was counted (everyone when the benefit has no limit)."""
    limit = issue.benefit.per_customer_limit
    if limit is None:
        return set(customer_ids)
    if not customer_ids or limit < 1:
        return set()
    statement = sql.SQL(
        "INSERT INTO {table} ({activity}, {scope}, {key}, {period}, {count})"
        " SELECT %(activity)s, page.scope, %(key)s, %(period)s, 1"
        " FROM unnest(%(scopes)s::text[]) WITH ORDINALITY AS page(scope, n) ORDER BY page.n"
        " ON CONFLICT ({activity}, {scope}, {key}, {period})"
        " DO UPDATE SET {count} = {table}.{count} + 1 WHERE {table}.{count} + 1 <= %(limit)s"
        " RETURNING {scope}"
    ).format(**_limit_counter())
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(None), _limit_values(issue, customer_ids))
        return {int(row[0].removeprefix("c:")) for row in cursor.fetchall()}


def _uncount(*, issue: BenefitIssue, customer_ids: list[int]) -> None:
    """Give back the counts of customers the stock or budget then did not reach."""
    if issue.benefit.per_customer_limit is None or not customer_ids:
        return
    statement = sql.SQL(
        "UPDATE {table} SET {count} = {count} - 1 WHERE {activity} = %(activity)s"
        " AND {key} = %(key)s AND {period} = %(period)s AND {scope} = ANY(%(scopes)s::text[])"
    ).format(**_limit_counter())
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(None), _limit_values(issue, customer_ids))


def _column(name: str) -> sql.Identifier:
    return sql.Identifier(Grant._meta.get_field(name).column)


def _take(*, issue: BenefitIssue, wanted: int) -> tuple[int, str]:
    """Take stock and budget for up to `wanted` units under the rows' locks (benefit first,
    then activity, as a chain run takes them); returns (units, why the rest got none)."""
    if wanted == 0:
        return 0, IssueOutcome.OUT_OF_STOCK
    benefit = Benefit.objects.select_for_update().get(pk=issue.benefit_id)
    count, short_of = wanted, IssueOutcome.OUT_OF_STOCK
    if benefit.stock_total is not None:
        count = min(count, benefit.stock_remaining or 0)
    if benefit.value:
        activity = Activity.objects.select_for_update().get(pk=issue.activity_id)
        if activity.budget_total is not None:
            affordable = int((activity.budget_remaining or 0) // benefit.value)
            if affordable < count:
                count, short_of = affordable, IssueOutcome.BUDGET_EXHAUSTED
            if count:
                Activity.objects.filter(pk=activity.pk).update(
                    budget_remaining=F("budget_remaining") - benefit.value * count
                )
    if benefit.stock_total is not None and count:
        Benefit.objects.filter(pk=benefit.pk).update(stock_remaining=F("stock_remaining") - count)
        if benefit.stock_remaining == count:
            transaction.on_commit(partial(enqueue.exhaust_activity, activity_id=issue.activity_id))
    return count, short_of


def _insert_grants(
    *, issue: BenefitIssue, customer_ids: list[int], now: dt.datetime
) -> list[tuple[int, str | None, dt.datetime | None]]:
    """Insert one grant per customer from arrays; returns (customer, code, valid_until) of
    each. Raises CodeCollision (the page rolls back) when a generated code was taken."""
    if not customer_ids:
        return []
    benefit = issue.benefit
    spec = coupon_spec(benefit)
    codes: list[str | None] = [None] * len(customer_ids)
    valid_from = valid_until = None
    if spec is not None:
        if spec.from_pool:
            claimed = coupon_codes.claim_pool_codes(benefit_id=benefit.pk, count=len(customer_ids))
            if len(claimed) != len(customer_ids):
                raise InvalidConfiguration(_("The pool has fewer free codes than its stock."))
            codes = list(claimed)
        else:
            codes = list(coupon_codes.generate_codes(spec=spec, count=len(customer_ids)))
        valid_from, valid_until = coupon_codes.validity(
            spec=spec, timezone_name=issue.activity.timezone, issued_at=now
        )
    # A plain INSERT (no ON CONFLICT: speculative insertion costs every row); the only row
    # that can conflict is a generated code that exists, and then the whole page is redrawn.
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                _insert_statement(),
                {
                    "benefit": benefit.pk,
                    "activity": issue.activity_id,
                    "key": f"issue:{issue.pk}:",
                    "value": benefit.value,
                    "state": GrantState.ISSUED,
                    "valid_from": valid_from,
                    "valid_until": valid_until,
                    "now": now,
                    "customers": customer_ids,
                    "codes": codes,
                },
            )
    except IntegrityError as error:
        raise CodeCollision from error
    return [
        (customer_id, code, valid_until)
        for customer_id, code in zip(customer_ids, codes, strict=True)
    ]


def _insert_statement() -> str:
    names = [
        "benefit", "activity", "customer", "idempotency_key", "quantity", "remaining", "value",
        "state", "code", "valid_from", "valid_until", "order", "created_at", "updated_at",
    ]  # fmt: skip
    return (
        sql.SQL(
            "INSERT INTO {table} ({columns})"
            " SELECT %(benefit)s, %(activity)s, page.customer, %(key)s || page.customer, 1, 1,"
            " %(value)s, %(state)s, page.code, %(valid_from)s, %(valid_until)s, '', %(now)s,"
            " %(now)s FROM unnest(%(customers)s::bigint[], %(codes)s::text[])"
            " AS page(customer, code)"
        )
        .format(
            table=sql.Identifier(Grant._meta.db_table),
            columns=sql.SQL(", ").join(_column(name) for name in names),
        )
        .as_string(None)
    )


def _record_skips(*, issue: BenefitIssue, skips: list[tuple[int, str]]) -> None:
    if skips:
        IssueSkip.objects.bulk_create(
            [IssueSkip(issue_id=issue.pk, customer_id=pk, outcome=why) for pk, why in skips],
            ignore_conflicts=True,
        )


def run_issue(*, issue_id: int, seconds: float = 60.0) -> str:
    """Issue pages for about `seconds`: "done", "more" (call again) or "stopped"."""
    deadline = time.monotonic() + seconds
    while True:
        result = issue_next_page(issue_id=issue_id)
        if result is None:
            return "stopped"
        if result.done:
            return "done"
        if time.monotonic() >= deadline:
            return "more"


def resume_stalled_issues(*, older_than: dt.timedelta) -> int:
    """Start again the approved issues whose last page is older than `older_than` (their
    worker died, or the broker lost the task); a live run just shares the row lock."""
    stalled = list(
        BenefitIssue.objects.filter(
            state=IssueState.APPROVED, updated_at__lt=timezone.now() - older_than
        ).values_list("pk", flat=True)
    )
    for issue_id in stalled:
        enqueue.issue_benefit(issue_id=issue_id)
    return len(stalled)

"""Issuing and spending benefits. Stock and budget move only by conditional UPDATE, so
granted + remaining == initial holds under any concurrency."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Case, CharField, F, Model, Q, QuerySet, Value, When
from django.utils.translation import gettext as _
from django_fsm import can_proceed, has_transition_perm
from django_fsm_log.helpers import FSMLogDescriptor

from activities.engine.errors import Rejected
from activities.models import Activity, Benefit, Grant, GrantState
from activities.services import coupon_codes, lifecycle
from activities.services.counters import LimitPeriod, try_increment
from core.db.compiled_queries import CompiledQuery
from core.errors import TransitionNotAllowed
from core.metrics import record_grant

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from activities.engine.cache import BenefitConfig
    from activities.engine.context import RunContext


def _take(*, model: type[Model], pk: int, column: str, amount: Any) -> Any:
    """`UPDATE ... SET column = column - amount WHERE column >= amount RETURNING column`:
    what is left, or None when there was not enough (and nothing changed)."""
    table = connection.ops.quote_name(model._meta.db_table)
    name = connection.ops.quote_name(column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {name} = {name} - %s WHERE id = %s AND {name} >= %s "  # noqa: S608
            f"RETURNING {name}",
            [amount, pk, amount],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def _grant_with_key(idempotency_key: str) -> QuerySet[Grant]:
    return Grant.objects.filter(idempotency_key=idempotency_key)[:2]


def _grant_with_key_or_held(
    idempotency_key: str, benefit_id: int, customer_id: int
) -> QuerySet[Grant]:
    held = Q(benefit_id=benefit_id, customer_id=customer_id, state=GrantState.ISSUED)
    return Grant.objects.filter(Q(idempotency_key=idempotency_key) | held)[:2]


# Every grant a chain issues first looks for the one it may already have issued.
_GRANT_WITH_KEY = CompiledQuery(_grant_with_key, idempotency_key=str)
_GRANT_WITH_KEY_OR_HELD = CompiledQuery(
    _grant_with_key_or_held, idempotency_key=str, benefit_id=int, customer_id=int
)


def issue_grant(
    *, ctx: RunContext, benefit: BenefitConfig, quantity: int, idempotency_key: str
) -> Grant:
    """Issue `quantity` of a benefit, or raise Rejected with why not.

    Runs inside the run's transaction, which a rejection rolls back. The same idempotency key
    always yields the same grant. A customer who already holds an unused coupon, prize or cash
    grant of this benefit gets that grant back.
    """
    if benefit.stackable:
        found = _GRANT_WITH_KEY.instances(idempotency_key=idempotency_key)
    else:
        found = _GRANT_WITH_KEY_OR_HELD.instances(
            idempotency_key=idempotency_key, benefit_id=benefit.id, customer_id=ctx.customer.pk
        )
    if found:
        grant = next((g for g in found if g.idempotency_key == idempotency_key), found[0])
        if grant.benefit_id == benefit.id:
            grant.benefit = _config_benefit(benefit)
        return grant
    if benefit.per_customer_limit is not None and not try_increment(
        activity_id=ctx.activity.id,
        customer_id=ctx.customer.pk,
        key=f"benefit:{benefit.code}",
        per=LimitPeriod.CUSTOMER,
        limit=benefit.per_customer_limit,
        now=ctx.now,
        timezone_name=ctx.activity.timezone,
        amount=quantity,
    ):
        raise Rejected(f"{benefit.code}_limit_reached")
    if benefit.limited_stock:
        stock_left = _take(model=Benefit, pk=benefit.id, column="stock_remaining", amount=quantity)
        if stock_left is None:
            raise Rejected("out_of_stock")
        # The run that takes the last unit pauses or ends the activity, after commit.
        lifecycle.watch_stock(ctx=ctx, remaining=stock_left)
    value = benefit.value * quantity if benefit.value is not None else None
    if ctx.activity.has_budget and value:
        budget_left = _take(
            model=Activity, pk=ctx.activity.id, column="budget_remaining", amount=value
        )
        if budget_left is None:
            raise Rejected("budget_exhausted")
        lifecycle.watch_budget(ctx=ctx, remaining=budget_left)
    code = valid_from = valid_until = None
    if benefit.coupon is not None:
        code, valid_from, valid_until = coupon_codes.coupon_terms(
            spec=benefit.coupon,
            benefit_id=benefit.id,
            timezone_name=ctx.activity.timezone,
            now=ctx.now,
        )
        if code is None:
            raise Rejected("out_of_stock")
    grant = Grant.objects.create(
        benefit_id=benefit.id,
        activity_id=ctx.activity.id,
        customer_id=ctx.customer.pk,
        run_id=ctx.run.pk,
        idempotency_key=idempotency_key,
        quantity=quantity,
        remaining=quantity,
        value=value,
        code=code,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    record_grant(kind=benefit.kind, quantity=quantity)
    ctx.holdings_changed()
    grant.benefit = _config_benefit(benefit)
    return grant


def _config_benefit(benefit: BenefitConfig) -> Benefit:
    # The run's result reads the code and kind; the cached config already has them.
    return Benefit(pk=benefit.id, code=benefit.code, kind=benefit.kind)


def issue_grant_if_available(
    *, ctx: RunContext, benefit: BenefitConfig, quantity: int, idempotency_key: str
) -> Grant | None:
    """Like issue_grant, but an exhausted stock, budget or limit just yields None and the run
    goes on. When a refusal could follow a take that succeeded (a limit counted, then no stock),
    the attempt runs in a savepoint so that take is undone; with a single take there is nothing
    to undo and no savepoint to pay for."""
    takes = sum(
        (
            benefit.per_customer_limit is not None,
            benefit.limited_stock,
            ctx.activity.has_budget and benefit.value is not None,
            benefit.coupon is not None and benefit.coupon.from_pool,
        )
    )
    try:
        with transaction.atomic() if takes > 1 else contextlib.nullcontext():
            return issue_grant(
                ctx=ctx, benefit=benefit, quantity=quantity, idempotency_key=idempotency_key
            )
    except Rejected:
        return None


def spend(*, ctx: RunContext, benefit: BenefitConfig, quantity: int) -> bool:
    """Use `quantity` units of the customer's unused grants of a benefit, oldest first.

    Each grant moves by a conditional UPDATE; False (and nothing spent) when too few remain.
    """
    with transaction.atomic():
        needed = quantity
        holdings = (
            Grant.objects.filter(
                benefit_id=benefit.id,
                customer_id=ctx.customer.pk,
                state=GrantState.ISSUED,
                remaining__gt=0,
            )
            .order_by("created_at", "pk")
            .values_list("pk", "remaining")
        )
        for grant_id, remaining in holdings:
            take = min(remaining, needed)
            updated = Grant.objects.filter(pk=grant_id, remaining__gte=take).update(
                remaining=F("remaining") - take,
                state=Case(
                    When(remaining=take, then=Value(GrantState.REDEEMED)),
                    default=F("state"),
                    output_field=CharField(),
                ),
            )
            if updated:
                needed -= take
            if needed == 0:
                break
        if needed:
            transaction.set_rollback(True)
            return False
    ctx.holdings_changed()
    return True


def revoke_grant(*, grant: Grant, by: User | None = None, reason: str = "") -> Grant:
    """Take back an issued grant (fraud, mistake). Its stock is not returned: the unit was
    handed out, and granted + remaining == initial keeps counting it."""
    with transaction.atomic():
        locked = Grant.objects.select_for_update().get(pk=grant.pk)
        if not can_proceed(locked.revoke, check_conditions=False):
            raise TransitionNotAllowed(
                _("Grant %(id)s is %(state)s; only issued grants can be revoked.")
                % {"id": locked.pk, "state": locked.get_state_display()}
            )
        if by is not None and not has_transition_perm(locked.revoke, by):
            raise PermissionDenied(_("You are not allowed to revoke grants."))
        with (
            FSMLogDescriptor(locked, "by", by if by is not None and by.is_authenticated else None),
            FSMLogDescriptor(locked, "description", reason or None),
        ):
            locked.revoke()
        locked.save(update_fields=["state", "remaining", "updated_at"])
    return locked

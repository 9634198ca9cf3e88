"""Orders: sync and state transitions. Each transition raises a channel event
(`order.paid`, `order.shipped`, ...) into the activity engine, dispatched after commit, so
activities react to orders with no code."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django_fsm import can_proceed

from core.system_events import raise_system_event
from segments.errors import (
    InvalidOrder,
    OrderNotFound,
    OrderTransitionNotAllowed,
    UnknownTransition,
)
from segments.models import ORDER_TRANSITIONS, PAID_STATES, Customer, Order, OrderState
from segments.services.customers import ensure_customer


def upsert_order(
    *,
    external_id: str,
    customer_external_id: str,
    amount: Decimal,
    currency: str,
    placed_at: dt.datetime,
    attributes: dict[str, Any] | None = None,
    state: str | None = None,
    paid_at: dt.datetime | None = None,
) -> tuple[Order, bool]:
    """Create or update an order's data; returns (order, created).

    A new order starts `pending` unless `state` says otherwise: a non-pending state on creation
    records history (an order synced after the fact) and raises no event. Later state changes
    go through `transition_order` only.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(external_id=external_id).first()
        if order is None:
            try:
                with transaction.atomic():
                    order = _create(
                        external_id=external_id,
                        customer=ensure_customer(external_id=customer_external_id),
                        amount=amount,
                        currency=currency,
                        placed_at=placed_at,
                        attributes=attributes,
                        state=state,
                        paid_at=paid_at,
                    )
                    return order, True
            except IntegrityError:
                # A concurrent call created it first: update that one instead.
                order = Order.objects.select_for_update().get(external_id=external_id)
        if order.customer.external_id != customer_external_id:
            raise InvalidOrder(
                "This order belongs to another customer; an order's customer never changes.",
                details=[
                    {
                        "path": "customer",
                        "code": "customer_mismatch",
                        "message": order.customer.external_id,
                    }
                ],
            )
        if state is not None and state != order.state:
            raise _not_allowed(
                order, f"The order is {order.state}; change its state with a transition."
            )
        order.amount = amount
        order.currency = currency
        order.placed_at = placed_at
        if attributes is not None:
            order.attributes = attributes
        order.save(update_fields=["amount", "currency", "placed_at", "attributes", "updated_at"])
        return order, False


def _create(*, state: str | None, paid_at: dt.datetime | None, **fields: Any) -> Order:
    state = state or OrderState.PENDING
    if state in PAID_STATES or state == OrderState.REFUNDED:
        paid_at = paid_at or fields["placed_at"]
    elif paid_at is not None and state == OrderState.PENDING:
        raise InvalidOrder(
            "A pending order has no paid_at; pay it with the pay transition.",
            details=[{"path": "paid_at", "code": "invalid", "message": "The order is pending."}],
        )
    attributes = fields.pop("attributes") or {}
    return Order.objects.create(state=state, paid_at=paid_at, attributes=attributes, **fields)


def _not_allowed(order: Order, message: str) -> OrderTransitionNotAllowed:
    transitions = order.get_available_state_transitions()  # type: ignore[attr-defined]
    allowed = sorted(t.name for t in transitions)
    return OrderTransitionNotAllowed(
        f"{message} Allowed from {order.state}: {', '.join(allowed) or 'none'}.", allowed=allowed
    )


def transition_order(
    *,
    external_id: str,
    transition: str,
    at: dt.datetime | None = None,
    by: Any = None,
) -> tuple[Order, bool]:
    """Apply `transition` (pay, ship, complete, cancel, refund) under a row lock and record
    its channel event in the same transaction; returns (order, changed).

    Repeating a transition that already happened (a storefront retry) changes nothing and
    raises no second event.
    """
    if transition not in ORDER_TRANSITIONS:
        raise UnknownTransition(
            f"Unknown transition {transition!r}; use one of {', '.join(ORDER_TRANSITIONS)}."
        )
    target = ORDER_TRANSITIONS[transition]
    with transaction.atomic():
        order = (
            Order.objects.select_for_update()
            .select_related("customer")
            .filter(external_id=external_id)
            .first()
        )
        if order is None:
            raise OrderNotFound(f"There is no order {external_id!r}.")
        if order.state == target:
            return order, False
        method = getattr(order, transition)
        if not can_proceed(method):
            raise _not_allowed(order, f"An order that is {order.state} cannot {transition}.")
        if transition == "pay":
            # One customer's orders are paid one at a time, so only one can be the first.
            Customer.objects.select_for_update().filter(pk=order.customer_id).first()
        method(at=at, by=by)
        order.save()
        raise_system_event(
            channel_code=f"order.{target}",
            customer=order.customer,
            payload=order_payload(order, transition=transition),
            idempotency_key=f"order:{order.pk}:{transition}",
        )
    return order, True


def is_first_paid_order(order: Order) -> bool:
    """No other order of the customer was paid before this one."""
    if order.paid_at is None:
        return False
    earlier = Q(paid_at__lt=order.paid_at) | Q(paid_at=order.paid_at, pk__lt=order.pk)
    return not (
        Order.objects.filter(customer_id=order.customer_id, paid_at__isnull=False)
        .filter(earlier)
        .exclude(pk=order.pk)
        .exists()
    )


def order_payload(order: Order, *, transition: str) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "order": order.external_id,
        "transition": transition,
        "state": order.state,
        "amount": str(order.amount),
        "currency": order.currency,
        "placed_at": iso(order.placed_at),
        "paid_at": iso(order.paid_at),
        "shipped_at": iso(order.shipped_at),
        "completed_at": iso(order.completed_at),
        "cancelled_at": iso(order.cancelled_at),
        "refunded_at": iso(order.refunded_at),
        "attributes": order.attributes,
        "first_paid_order": is_first_paid_order(order),
    }

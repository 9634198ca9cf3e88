"""Redeeming and releasing coupons: the storefront's checkout and the orders that drive it.

Every decision happens under the grant's row lock, so of any number of concurrent redemptions of
one code exactly one succeeds. The answer a client got for an Idempotency-Key is stored with the
request, and the same key always gets that answer again (a 409 included); the same key with
another request is refused. Every transition goes through the model's django-fsm transitions, so
django-fsm-log records each one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm_log.helpers import FSMLogDescriptor

from activities.models import CouponRedemption, Grant, GrantState
from activities.services.coupon_codes import normalize
from core.errors import IdempotencyConflict, NotFound, error_body

REDEEM = "redeem"
RELEASE = "release"


class CouponNotFound(NotFound):
    code = "coupon_not_found"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200


def coupon_body(grant: Grant) -> dict[str, Any]:
    return {
        "code": grant.code,
        "state": grant.state,
        "value": None if grant.value is None else str(grant.value),
        "benefit": grant.benefit.code,
        "activity": grant.activity.code,
        "customer": grant.customer.external_id,
        "order": grant.order or None,
        "valid_from": _iso(grant.valid_from),
        "valid_until": _iso(grant.valid_until),
        "redeemed_at": _iso(grant.redeemed_at),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _conflict(code: str, message: str) -> Answer:
    return Answer(409, error_body(code, message))


def _locked(code: str) -> Grant:
    grant = (
        Grant.objects.select_for_update(of=("self",))
        .select_related("benefit", "activity", "customer")
        .filter(code=normalize(code))
        .first()
    )
    if grant is None:
        raise CouponNotFound("There is no coupon with this code.")
    return grant


def _expire_if_due(grant: Grant, now: dt.datetime) -> None:
    if grant.state == GrantState.ISSUED and grant.valid_until and grant.valid_until <= now:
        with FSMLogDescriptor(grant, "description", "validity ended"):
            grant.expire()
        grant.save(update_fields=["state", "remaining", "updated_at"])


def _decide_redeem(grant: Grant, *, customer: str, order: str, now: dt.datetime) -> Answer:
    _expire_if_due(grant, now)
    if grant.customer.external_id != customer:
        return _conflict("coupon_not_yours", "This coupon belongs to another customer.")
    if grant.state == GrantState.REDEEMED:
        return _conflict("coupon_already_redeemed", "This coupon was already redeemed.")
    if grant.state == GrantState.EXPIRED:
        return _conflict("coupon_expired", "This coupon has expired.")
    if grant.state == GrantState.REVOKED:
        return _conflict("coupon_revoked", "This coupon was revoked.")
    if grant.valid_from and grant.valid_from > now:
        return _conflict("coupon_not_yet_valid", "This coupon cannot be used yet.")
    with FSMLogDescriptor(grant, "description", f"order {order}"):
        grant.redeem(order=order, at=now)
    grant.save(update_fields=["state", "remaining", "order", "redeemed_at", "updated_at"])
    return Answer(200, coupon_body(grant))


def _decide_release(grant: Grant, *, order: str, now: dt.datetime) -> Answer:
    if grant.state == GrantState.REDEEMED:
        if grant.order != order:
            return _conflict("coupon_order_mismatch", "This coupon was redeemed on another order.")
        with FSMLogDescriptor(grant, "description", f"order {order} cancelled"):
            grant.release()
        grant.save(update_fields=["state", "remaining", "order", "redeemed_at", "updated_at"])
        _expire_if_due(grant, now)
        return Answer(200, coupon_body(grant))
    if grant.state == GrantState.ISSUED:
        # Released already (a retry): usable, nothing to do.
        _expire_if_due(grant, now)
        return Answer(200, coupon_body(grant))
    if grant.state == GrantState.REVOKED:
        return _conflict("coupon_revoked", "This coupon was revoked.")
    return _conflict("coupon_expired", "This coupon has expired.")


def _run(
    *,
    action: str,
    code: str,
    request: dict[str, Any],
    client_id: int | None,
    idempotency_key: str,
    now: dt.datetime | None,
) -> Answer:
    now = now or timezone.now()
    try:
        with transaction.atomic():
            grant = _locked(code)
            prior = CouponRedemption.objects.filter(
                client__pk=client_id, idempotency_key=idempotency_key
            ).first()
            if prior is not None:
                return _replay(prior, action=action, request=request)
            if action == REDEEM:
                answer = _decide_redeem(
                    grant, customer=request["customer"], order=request["order"], now=now
                )
            else:
                answer = _decide_release(grant, order=request["order"], now=now)
            CouponRedemption.objects.create(
                client_id=client_id,
                idempotency_key=idempotency_key,
                action=action,
                grant=grant,
                request=request,
                status=answer.status,
                response=answer.body,
            )
            return answer
    except IntegrityError:
        # The same key raced in with another request (or another code): the stored one wins.
        prior = CouponRedemption.objects.filter(
            client__pk=client_id, idempotency_key=idempotency_key
        ).first()
        if prior is None:
            raise
        return _replay(prior, action=action, request=request)


def _replay(prior: CouponRedemption, *, action: str, request: dict[str, Any]) -> Answer:
    if prior.action != action or prior.request != request:
        raise IdempotencyConflict(
            "This Idempotency-Key was used with another request; use a new key."
        )
    return Answer(prior.status, prior.response)


def redeem_coupon(
    *,
    code: str,
    customer: str,
    order: str,
    client_id: int | None,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> Answer:
    """Use the coupon on `order`: 200 with its value, or a 409 answer with a stable code.
    Raises CouponNotFound (404) and IdempotencyConflict (422)."""
    return _run(
        action=REDEEM,
        code=code,
        request={"code": normalize(code), "customer": customer, "order": order},
        client_id=client_id,
        idempotency_key=idempotency_key,
        now=now,
    )


def release_coupon(
    *,
    code: str,
    order: str,
    client_id: int | None,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> Answer:
    """The order that used the coupon is cancelled: usable again while still valid, else
    expired. Releasing twice is answered the same; without a key, each call is keyed by the
    order and the current time, as release repeats safely on its own."""
    now = now or timezone.now()
    return _run(
        action=RELEASE,
        code=code,
        request={"code": normalize(code), "order": order},
        client_id=client_id,
        idempotency_key=idempotency_key or f"release:{normalize(code)}:{order}:{now.isoformat()}",
        now=now,
    )


ORDER_COUPON_KEYS = ("coupons", "coupon")
MAX_COUPONS_PER_ORDER = 20


def coupons_on_order(payload: dict[str, Any]) -> list[str]:
    """The codes an order names in its attributes (`coupons: [...]` or `coupon: "..."`)."""
    attributes = payload.get("attributes")
    if not isinstance(attributes, dict):
        return []
    codes: list[str] = []
    for key in ORDER_COUPON_KEYS:
        value = attributes.get(key)
        if isinstance(value, str):
            codes.append(value)
        elif isinstance(value, list):
            codes.extend(item for item in value if isinstance(item, str))
    return list(dict.fromkeys(normalize(code) for code in codes if code.strip()))[
        :MAX_COUPONS_PER_ORDER
    ]


def follow_order(*, channel_code: str, customer_external_id: str, payload: dict[str, Any]) -> None:
    """A paid order redeems the coupons it names, a cancelled one releases them, for the
    activities that let orders drive their coupons. Runs in the order's transaction, each
    coupon in a savepoint: a coupon that cannot be used never stops the order."""
    if channel_code not in ("order.paid", "order.cancelled"):
        return
    order = str(payload.get("order") or "")
    action = REDEEM if channel_code == "order.paid" else RELEASE
    codes = coupons_on_order(payload)
    following = set(
        Grant.objects.filter(code__in=codes, activity__coupons_follow_orders=True).values_list(
            "code", flat=True
        )
    )
    for code in codes:
        if code not in following:
            continue
        request: dict[str, Any] = {"code": code, "order": order}
        if action == REDEEM:
            request["customer"] = customer_external_id
        try:
            with transaction.atomic():
                _run(
                    action=action,
                    code=code,
                    request=request,
                    client_id=None,
                    idempotency_key=f"order:{order}:{action}:{code}",
                    now=None,
                )
        except (CouponNotFound, IdempotencyConflict):
            continue

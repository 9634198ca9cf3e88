"""Help requests (assist, 助力): a customer opens one, friends help, and when enough helped
within its lifetime it is fulfilled, once.

A help counts once per friend per request (unique `Assist`), never from the initiator (a check
constraint, and a clear refusal first), and moves `helpers` by one conditional UPDATE
(`... WHERE state = open AND helpers < needed AND expires_at > now`), so of any number of
concurrent helpers exactly `needed` count and exactly one run sees the request fulfilled.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F, QuerySet

from activities.engine.errors import Rejected
from activities.models import Assist, HelpRequest, HelpRequestState
from core.db.rows import insert_unless_taken
from segments.models import Customer
from segments.services import ensure_customer_id

from .teams import new_code


def open_help_request(
    *, activity_id: int, customer_id: int, needed: int, expires_at: dt.datetime, now: dt.datetime
) -> tuple[HelpRequest, bool]:
    """The customer's open request in this activity, or a new one; (request, created).

    An open request whose lifetime ran out (the sweep has not reached it yet) expires here, and
    a new one opens."""
    current = (
        HelpRequest.objects.select_for_update()
        .filter(activity_id=activity_id, initiator_id=customer_id, state=HelpRequestState.OPEN)
        .first()
    )
    if current is not None:
        if current.expires_at > now:
            return current, False
        current.expire()
        _close(request=current, now=now)
    request = HelpRequest.objects.create(
        activity_id=activity_id,
        code=new_code(),
        initiator_id=customer_id,
        needed=needed,
        expires_at=expires_at,
    )
    return request, True


def help_request(
    *,
    activity_id: int,
    code: str,
    helper: Customer,
    now: dt.datetime,
    new_customers_only: bool,
) -> HelpRequest:
    """Count the helper's help; the request is fulfilled when this help completes it.

    Rejected: `request_not_found`, `self_help`, `not_a_new_customer` (first seen before the
    request opened), `already_helped`, `request_fulfilled`, `request_expired`.
    """
    request = HelpRequest.objects.filter(activity_id=activity_id, code=code).first()
    if request is None:
        raise Rejected("request_not_found")
    if request.initiator_id == helper.pk:
        raise Rejected("self_help")
    if new_customers_only and helper.created_at < request.created_at:
        raise Rejected("not_a_new_customer")
    assist = insert_unless_taken(
        Assist, request_id=request.pk, helper_id=helper.pk, initiator_id=request.initiator_id
    )
    if assist is None:
        raise Rejected("already_helped")
    counted = HelpRequest.objects.filter(
        pk=request.pk,
        state=HelpRequestState.OPEN,
        helpers__lt=F("needed"),
        expires_at__gt=now,
    ).update(helpers=F("helpers") + 1)
    if not counted:
        request = HelpRequest.objects.get(pk=request.pk)
        if request.state == HelpRequestState.EXPIRED or request.expires_at <= now:
            raise Rejected("request_expired")
        raise Rejected("request_fulfilled")
    # Our UPDATE holds the row's lock: this reads the count it left.
    request = HelpRequest.objects.select_for_update().get(pk=request.pk)
    if request.helpers == request.needed:
        request.fulfil()
        _close(request=request, now=now)
    return request


def _close(*, request: HelpRequest, now: dt.datetime) -> None:
    request.closed_at = now
    request.save(update_fields=["state", "closed_at"])


def expire_requests(
    *, requests: QuerySet[HelpRequest], now: dt.datetime, limit: int = 500, wait: bool = False
) -> int:
    """Expire a batch of the open requests among `requests`. Rows another transaction holds
    are skipped (the sweep comes back), unless `wait` (the settlement, which closes them all)."""
    with transaction.atomic():
        batch = list(
            requests.filter(state=HelpRequestState.OPEN)
            .select_for_update(skip_locked=not wait)
            .order_by("pk")[:limit]
        )
        for request in batch:
            request.expire()
            _close(request=request, now=now)
    return len(batch)


def expire_overdue_requests(*, now: dt.datetime, limit: int = 500) -> int:
    return expire_requests(
        requests=HelpRequest.objects.filter(expires_at__lte=now), now=now, limit=limit
    )


def seed_help_request(
    *, activity_id: int, code: str, needed: int, helpers: int, expires_at: dt.datetime
) -> HelpRequest:
    """An open request by a stand-in initiator (`<code>-initiator`) with `helpers` stand-in
    helpers: the dry run's "this request has 2 of 3 helpers" starting state."""
    initiator = ensure_customer_id(external_id=f"{code}-initiator")
    request = HelpRequest.objects.create(
        activity_id=activity_id,
        code=code,
        initiator_id=initiator,
        needed=needed,
        helpers=helpers,
        expires_at=expires_at,
    )
    Assist.objects.bulk_create(
        Assist(
            request=request,
            helper_id=ensure_customer_id(external_id=f"{code}-helper-{n}"),
            initiator_id=initiator,
        )
        for n in range(1, helpers + 1)
    )
    return request

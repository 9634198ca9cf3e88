"""Planning a broadcast: one page of its segment at a time, each page one statement
(`services.plan_statements`) under the broadcast's row lock; and the one-customer version of
the same decisions for a transactional message."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import GambitError
from notifications.models import Broadcast, BroadcastState, Delivery, DeliveryStatus
from notifications.services.plan_statements import Policy, page_statement, single_statement
from notifications.services.sql import cursor as statement_cursor
from notifications.services.transitions import fail_broadcast
from segments.selectors import segment_customers

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PageResult:
    members: int
    queued: int
    cursor: int
    done: bool


def plan_page(
    *, broadcast: Broadcast, page_sql: str, page_params: list[Any], page_size: int, now: dt.datetime
) -> PageResult:
    """Plan one page (call under the broadcast's row lock, in a transaction)."""
    statement = page_statement(
        broadcast=broadcast,
        page_sql=page_sql,
        page_params=page_params,
        page_size=page_size,
        now=now,
    )
    with statement_cursor() as cursor:
        cursor.execute(statement.text, statement.params)
        members, queued, cursor_id, planned_at = cursor.fetchone()
    return PageResult(members=members, queued=queued, cursor=cursor_id, done=planned_at is not None)


@dataclass(frozen=True)
class SingleResult:
    delivery_id: int | None
    status: str
    reason: str


def plan_single(
    *,
    customer_id: int,
    policy: Policy,
    source_key: str,
    rendered: dict,
    counts_toward_cap: bool,
) -> SingleResult:
    """One transactional message through the same decisions as a broadcast's page."""
    statement = single_statement(
        customer_id=customer_id,
        policy=policy,
        source_key=source_key,
        rendered=rendered,
        counts_toward_cap=counts_toward_cap,
    )
    with statement_cursor() as cursor:
        cursor.execute(statement.text, statement.params)
        row = cursor.fetchone()
    if row is None:
        existing = Delivery.objects.filter(source_key=source_key, broadcast__isnull=True).first()
        if existing is None:
            return SingleResult(None, DeliveryStatus.SKIPPED, "")
        return SingleResult(existing.pk, existing.status, existing.reason)
    return SingleResult(row[0], row[1], row[2])


def plan_next_page(*, broadcast_id: int) -> str:
    """Plan the next page of a broadcast: "more", "done" (planning finished) or "stopped"
    (cancelled, finished, or failed because its segment cannot be read)."""
    with transaction.atomic():
        broadcast = (
            Broadcast.objects.select_for_update(of=("self",))
            .select_related("template", "parent")
            .filter(pk=broadcast_id)
            .first()
        )
        if broadcast is None or broadcast.state not in (
            BroadcastState.SENDING,
            BroadcastState.PAUSED,
        ):
            return "stopped"
        if broadcast.planned_at is not None:
            return "done"
        page_size = settings.NOTIFICATIONS_PAGE_SIZE
        # A page is idempotent (the cursor moves with its rows), so its commit need not wait
        # for the WAL flush: a page lost in a database crash is planned again. Any later
        # synchronous commit (a sender's claim) flushes it first.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        try:
            with transaction.atomic():
                members = segment_customers(
                    segment_id=broadcast.segment_id, now=broadcast.started_at
                )
                page = (
                    members.filter(pk__gt=broadcast.plan_cursor)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:page_size]
                )
                page_sql, page_params = page.query.sql_with_params()
                result = plan_page(
                    broadcast=broadcast,
                    page_sql=page_sql,
                    page_params=list(page_params),
                    page_size=page_size,
                    now=timezone.now(),
                )
        except (GambitError, DatabaseError, ObjectDoesNotExist) as error:
            logger.warning("plan_failed", broadcast=broadcast_id, error=str(error))
            failure = str(error)
        else:
            logger.info(
                "page_planned",
                broadcast=broadcast_id,
                members=result.members,
                queued=result.queued,
                cursor=result.cursor,
            )
            return "done" if result.done else "more"
    fail_broadcast(
        broadcast_id=broadcast_id,
        reason=_("The segment could not be read: %(error)s") % {"error": failure[:200]},
    )
    return "stopped"

"""The hand-written statements against the models they write: a Delivery column or status that
the planning and sending SQL does not handle fails here, not in a broadcast."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.utils import timezone
from psycopg import sql

from notifications.models import (
    OPEN_STATUSES,
    Broadcast,
    BroadcastKind,
    Delivery,
    DeliveryStatus,
    NotificationTemplate,
)
from notifications.services import deliveries, plan_statements

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def delivery_columns() -> set[str]:
    return {field.column for field in Delivery._meta.concrete_fields}


def inserted_columns(text: str) -> list[set[str]]:
    """The column list of every INSERT into the deliveries table in `text`."""
    table = sql.Identifier(Delivery._meta.db_table).as_string(None)
    return [
        {name.strip().strip('"') for name in columns.split(",")}
        for columns in re.findall(rf"INSERT INTO {re.escape(table)} \(([^)]*)\)", text)
    ]


def literal(value: str) -> str:
    return sql.Literal(value).as_string(None)


def birthday_occurrence() -> Broadcast:
    """An occurrence of a birthday broadcast, with every policy on: its page plans both INSERTs
    (its own deliveries, and the standing broadcast's members with no birthday)."""
    template = NotificationTemplate(code="greeting", channel="email")
    parent = Broadcast(pk=1, kind=BroadcastKind.BIRTHDAY, birthday_hour=9, template=template)
    return Broadcast(
        pk=2,
        template=template,
        parent=parent,
        window_start=NOW - dt.timedelta(minutes=15),
        occurrence=NOW,
        frequency_cap=3,
        quiet_start=dt.time(22),
        quiet_end=dt.time(8),
    )


@pytest.mark.django_db
def test_planning_writes_every_delivery_column_or_says_why_not():
    left = {Delivery._meta.get_field(name).column for name in plan_statements.LEFT_TO_DEFAULTS}
    page = plan_statements.page_statement(
        broadcast=birthday_occurrence(),
        page_sql="SELECT 1",
        page_params=[],
        page_size=100,
        now=NOW,
    )
    single = plan_statements.single_statement(
        customer_id=1,
        policy=plan_statements.Policy(channel="sms", default_timezone="UTC", now=NOW),
        source_key="run:1:step:0",
        rendered={},
        counts_toward_cap=False,
    )
    inserts = inserted_columns(page.text) + inserted_columns(single.text)

    assert len(inserts) == 3
    for written in inserts:
        assert written | left == delivery_columns()
        assert not written & left


def test_what_planning_leaves_to_defaults_can_be_left():
    """Nothing in the database fills a column in: what an INSERT leaves out is NULL or the
    primary key's sequence."""
    for name in plan_statements.LEFT_TO_DEFAULTS:
        field = Delivery._meta.get_field(name)
        assert field.primary_key or field.null, name


def test_every_delivery_status_is_open_or_counted_on_the_broadcast():
    finished = set(deliveries.FINISHED_COUNTERS)
    assert set(OPEN_STATUSES) | finished == set(DeliveryStatus)
    assert not set(OPEN_STATUSES) & finished
    counters = {field.name for field in Broadcast._meta.concrete_fields}
    assert set(deliveries.FINISHED_COUNTERS.values()) <= counters


def test_every_delivery_status_counts_toward_the_frequency_cap_or_says_why_not():
    capped = set(plan_statements.CAPPED_STATUSES)
    uncapped = set(plan_statements.UNCAPPED_STATUSES)
    assert capped | uncapped == set(DeliveryStatus)
    assert not capped & uncapped


def test_the_sending_statements_handle_the_statuses_they_are_said_to():
    claimed_from, held_as = OPEN_STATUSES
    for claim in (deliveries._claim_batch_sql(), deliveries._claim_single_sql()):
        assert literal(claimed_from) in claim
        assert literal(held_as) in claim
    recorded = deliveries._flush_sql()
    for status, counter in deliveries.FINISHED_COUNTERS.items():
        column = sql.Identifier(Broadcast._meta.get_field(counter).column).as_string(None)
        assert f"{column} = b.{column} + (SELECT count(*) FROM done WHERE" in recorded
        assert literal(status) in recorded


@pytest.mark.django_db
def test_the_page_statement_is_valid_sql():
    """EXPLAIN parses and plans the full birthday page without running it."""
    page = plan_statements.page_statement(
        broadcast=birthday_occurrence(),
        page_sql="SELECT 1",
        page_params=[],
        page_size=100,
        now=timezone.now(),
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + page.text, page.params)
        assert cursor.fetchall()

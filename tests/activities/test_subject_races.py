"""The gameplay subjects under concurrency, on real PostgreSQL: many runs at once in threads,
each on its own connection, as many workers would run them."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from activities.models import (
    Assist,
    ChainRun,
    Event,
    Grant,
    HelpRequest,
    RunOutcome,
    Score,
    Settlement,
    Team,
    TeamMember,
)
from activities.selectors_subjects import leaderboard_top, naive_rank_of, rank_of
from activities.services import settlement
from activities.services.events import accept_event, process_event
from tests.activities.subject_builders import (
    Driver,
    build_assist,
    build_group_buy,
    build_leaderboard,
)
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db(transaction=True)

# Enough threads to pile onto one row, few enough for a shared PostgreSQL.
THREADS = 40


def _accepted(channel: str, payloads: list[tuple[str, dict]]) -> list:
    client = make_api_key()[0]
    return [
        accept_event(
            client=client,
            idempotency_key=f"{channel}-{customer}",
            channel_code=channel,
            customer_external_id=customer,
            payload=payload,
        )[0].pk
        for customer, payload in payloads
    ]


def _all_at_once(function, items: list) -> list:
    """Run `function` on every item from THREADS threads, released together."""
    go = threading.Event()

    def run(item):
        go.wait()
        try:
            return function(item)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(run, item) for item in items]
        go.set()
        return [future.result() for future in futures]


def test_200_customers_join_a_team_of_5_at_once():
    build_group_buy(size=5)
    # The leader is the first of the 200; the other 199 join at once.
    code = Driver().fire("team.open", "leader").result["team"]["code"]
    joins = _accepted("team.join", [(f"joiner-{i}", {"team": code}) for i in range(199)])

    _all_at_once(lambda event_id: process_event(event_id=event_id), joins)

    runs = ChainRun.objects.filter(event_id__in=joins)
    outcomes = sorted(runs.values_list("outcome", "reason"))
    assert outcomes.count((RunOutcome.COMPLETED, "")) == 4
    assert outcomes.count((RunOutcome.REJECTED, "team_full")) == 195
    team = Team.objects.get(code=code)
    assert (team.state, team.members, team.size) == ("complete", 5, 5)
    assert TeamMember.objects.filter(team=team).count() == 5
    # The completing join credited the five members, once each.
    credits = Event.objects.filter(channel__code="team.completed")
    assert credits.count() == 5
    assert set(credits.values_list("customer_id", flat=True)) == set(
        TeamMember.objects.filter(team=team).values_list("customer_id", flat=True)
    )


def test_100_helpers_at_once_on_a_request_needing_10():
    build_assist(needed=10)
    driver = Driver()
    code = driver.fire("assist.start", "ivy").result["request"]["code"]
    helps = _accepted("assist.help", [(f"friend-{i}", {"request": code}) for i in range(100)])

    _all_at_once(lambda event_id: process_event(event_id=event_id), helps)

    runs = ChainRun.objects.filter(event_id__in=helps)
    assert runs.filter(outcome=RunOutcome.COMPLETED).count() == 10
    assert runs.filter(outcome=RunOutcome.REJECTED, reason="request_fulfilled").count() == 90
    request = HelpRequest.objects.get(code=code)
    assert (request.state, request.helpers) == ("fulfilled", 10)
    assert Assist.objects.filter(request=request).count() == 10
    credited = driver.drain()
    assert [(r.customer.external_id, r.outcome) for r in credited] == [("ivy", RunOutcome.GRANTED)]
    assert Grant.objects.filter(benefit__code="free-gift").count() == 1


def test_ranks_are_exact_after_concurrent_score_updates():
    activity = build_leaderboard(prizes=[])
    rng = random.Random(15)
    customers = [f"player-{i}" for i in range(60)]
    # Few distinct scores, so ties (and their tie-break by time) are common.
    payloads = [(rng.choice(customers), {"points": rng.randint(1, 5)}) for _ in range(400)]
    client = make_api_key()[0]
    events = [
        accept_event(
            client=client,
            idempotency_key=f"score-{n}",
            channel_code="game.scored",
            customer_external_id=customer,
            payload=payload,
        )[0].pk
        for n, (customer, payload) in enumerate(payloads)
    ]

    _all_at_once(lambda event_id: process_event(event_id=event_id), events)

    assert ChainRun.objects.filter(outcome=RunOutcome.COMPLETED).count() == 400
    totals: dict[str, int] = {}
    for customer, payload in payloads:
        totals[customer] = totals.get(customer, 0) + payload["points"]
    scores = Score.objects.filter(activity=activity).select_related("customer")
    assert {s.customer.external_id: s.score for s in scores} == totals
    ranks = sorted(rank_of(activity_id=activity.pk, customer_id=s.customer_id)[0] for s in scores)
    assert ranks == list(range(1, len(totals) + 1))
    for score in scores:
        assert rank_of(activity_id=activity.pk, customer_id=score.customer_id) == naive_rank_of(
            activity_id=activity.pk, customer_id=score.customer_id
        )
    top = leaderboard_top(activity_id=activity.pk, limit=len(totals))
    assert [(p.customer, p.rank) for p in top] == [
        (p.customer, rank_of(activity_id=activity.pk, customer_id=p.customer_id)[0]) for p in top
    ]


def test_prizes_are_settled_exactly_once_by_concurrent_sweeps():
    activity = build_leaderboard()
    driver = Driver()
    for n, customer in enumerate("abcdef"):
        driver.fire("game.scored", customer, {"points": 100 - n})
    type(activity).objects.filter(pk=activity.pk).update(state="ended")

    outcomes = _all_at_once(
        lambda _: settlement.settle_activity(activity_id=activity.pk) is not None, range(12)
    )

    assert outcomes.count(True) == 1
    assert Settlement.objects.filter(activity=activity).count() == 1
    grants = Grant.objects.filter(activity=activity).order_by("benefit__code", "customer_id")
    assert [(g.benefit.code, g.customer.external_id) for g in grants] == [
        ("gold", "a"),
        ("silver", "b"),
        ("silver", "c"),
    ]

"""Teams, help requests and leaderboard settlement through the real stack: gunicorn, Redis,
Celery workers (and beat for the settlement), each race over HTTP at once."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from activities.models import (
    Activity,
    ChainRun,
    Event,
    Grant,
    HelpRequest,
    RunOutcome,
    Settlement,
    Team,
    TeamMember,
)
from activities.services import settlement
from tests.activities.subject_builders import build_assist, build_group_buy, build_leaderboard
from tests.conftest import wait_until
from tests.factories import make_api_key

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def post(client: httpx.Client, channel: str, customer: str, payload: dict, wait: int = 0):
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    if wait:
        headers["Prefer"] = f"wait={wait}"
    response = client.post(
        "/api/v1/events/",
        json={"channel": channel, "customer": customer, "payload": payload},
        headers=headers,
    )
    assert response.status_code in (200, 202), response.text
    return response


def open_client(stack) -> httpx.Client:
    _, raw = make_api_key()
    return httpx.Client(
        base_url=stack.base_url, timeout=60, headers={"Authorization": f"Api-Key {raw}"}
    )


def at_once(function, items):
    with ThreadPoolExecutor(max_workers=40) as pool:
        return list(pool.map(function, items))


def test_200_customers_on_one_team_of_5_through_workers(start_stack):
    build_group_buy(size=5)
    stack = start_stack()
    with open_client(stack) as client:
        opened = post(client, "team.open", "leader", {}, wait=10).json()
        code = opened["runs"][0]["result"]["team"]["code"]
        at_once(lambda i: post(client, "team.join", f"j-{i}", {"team": code}), range(199))
        wait_until(lambda: Event.objects.filter(state="done").count() == 1 + 199 + 5, timeout=240)
        team = client.get(f"/api/v1/activities/group/teams/{code}/").json()
    assert (team["state"], team["members"], len(team["customers"])) == ("complete", 5, 5)
    joins = ChainRun.objects.filter(event__channel__code="team.join")
    assert joins.filter(outcome=RunOutcome.COMPLETED).count() == 4
    assert joins.filter(outcome=RunOutcome.REJECTED, reason="team_full").count() == 195
    assert TeamMember.objects.filter(team=Team.objects.get(code=code)).count() == 5
    assert sorted(
        Grant.objects.filter(benefit__code="group-price").values_list("customer_id", flat=True)
    ) == sorted(TeamMember.objects.values_list("customer_id", flat=True))


def test_100_helpers_at_once_through_workers_reward_the_initiator_once(start_stack):
    build_assist(needed=10)
    stack = start_stack()
    with open_client(stack) as client:
        opened = post(client, "assist.start", "ivy", {}, wait=10).json()
        code = opened["runs"][0]["result"]["request"]["code"]
        at_once(lambda i: post(client, "assist.help", f"f-{i}", {"request": code}), range(100))
        wait_until(lambda: Event.objects.filter(state="done").count() == 1 + 100 + 1, timeout=240)
        request = client.get(f"/api/v1/activities/assist/assists/{code}/").json()
    assert (request["state"], request["helpers"], len(request["customers"])) == (
        "fulfilled",
        10,
        10,
    )
    helps = ChainRun.objects.filter(event__channel__code="assist.help")
    assert helps.filter(outcome=RunOutcome.COMPLETED).count() == 10
    assert helps.filter(outcome=RunOutcome.REJECTED, reason="request_fulfilled").count() == 90
    assert HelpRequest.objects.get(code=code).helpers == 10
    [gift] = Grant.objects.filter(benefit__code="free-gift")
    assert gift.customer.external_id == "ivy"


def test_beat_settles_the_leaderboard_prizes_exactly_once(start_stack):
    activity = build_leaderboard()
    stack = start_stack(env_overrides={"GAMBIT_SETTLE_INTERVAL": "1"}, beat=True)
    with open_client(stack) as client:
        for n, customer in enumerate(["p1", "p2", "p3", "p4"]):
            post(client, "game.scored", customer, {"points": 40 - n}, wait=10)
        board = client.get("/api/v1/activities/board/leaderboard/?limit=2&customer=p4").json()
    assert [p["customer"] for p in board["top"]] == ["p1", "p2"]
    assert board["customer"]["rank"] == 4
    Activity.objects.filter(pk=activity.pk).update(state="ended")
    wait_until(
        lambda: Settlement.objects.filter(activity=activity, settled_at__isnull=False).exists(),
        timeout=60,
    )
    # Beat keeps firing every second, and a sweep by hand joins in: nothing is paid twice.
    first = Settlement.objects.get(activity=activity).settled_at
    time.sleep(3)
    assert settlement.settle_activity(activity_id=activity.pk) is None
    assert Settlement.objects.get(activity=activity).settled_at == first
    grants = Grant.objects.filter(activity=activity).order_by("benefit__code", "customer_id")
    assert [(g.benefit.code, g.customer.external_id) for g in grants] == [
        ("gold", "p1"),
        ("silver", "p2"),
        ("silver", "p3"),
    ]

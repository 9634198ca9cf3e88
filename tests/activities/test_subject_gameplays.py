"""The assist, group-buy, vote and leaderboard gameplays: built from their parameters, refused
when they cannot work, driven over REST to their rewards, read back through the leaderboard,
team, help-request and progress endpoints; dry runs from a given state."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from activities.definitions.gameplays import create_from_gameplay, get
from activities.models import Activity, Channel, CodeSource, Event, Grant, Settlement, Team
from activities.services import settlement
from activities.services.events import process_event
from core.errors import InvalidConfiguration
from segments.models import Customer

pytestmark = pytest.mark.django_db

WINDOW = {"starts_at": "2026-01-01T00:00:00", "ends_at": "2027-12-31T23:59:59"}


def launch(code, params=None, *, activity_code=None):
    gameplay = get(code)
    return create_from_gameplay(
        gameplay_code=code,
        parameters={**gameplay.defaults(), **(params or {})},
        activity={
            "code": activity_code or f"{code}-test",
            "name": "Test",
            "timezone": "Asia/Shanghai",
            **WINDOW,
            "segment": None,
            "benefits": gameplay.initial_benefits(),
        },
        launch_bypassing_review_by="test",
    )


class Storefront:
    def __init__(self, api) -> None:
        self.api = api
        self.sent = 0

    def fire(self, channel, customer, payload=None):
        self.sent += 1
        response = self.api.post(
            "/api/v1/events/",
            data=json.dumps({"channel": channel, "customer": customer, "payload": payload or {}}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"rest-{self.sent}",
        )
        assert response.status_code == 202, response.content
        process_event(event_id=response.json()["id"])
        # What the workers would run next: events the run emitted (credits).
        while pending := Event.objects.filter(state="pending").first():
            process_event(event_id=pending.pk)
        [run] = self.api.get(response.json()["url"]).json()["runs"]
        return run

    def get(self, url):
        response = self.api.get(url)
        assert response.status_code == 200, response.content
        return response.json()


@pytest.fixture
def shop(api):
    return Storefront(api)


def test_group_buy_over_rest_to_every_members_benefit(shop):
    launch("group-buy")
    opened = shop.fire("team.open", "leader")
    code = opened["result"]["team"]["code"]
    assert opened["result"]["team"]["expires_at"]
    assert shop.fire("team.join", "ann", {"team": code})["result"]["team"]["members"] == 2
    full = shop.fire("team.join", "bob", {"team": code})
    assert full["result"]["team"]["state"] == "complete"
    holders = Grant.objects.filter(benefit__code="group-price")
    assert sorted(holders.values_list("customer__external_id", flat=True)) == [
        "ann",
        "bob",
        "leader",
    ]

    team = shop.get(f"/api/v1/activities/group-buy-test/teams/{code}/")
    assert (team["state"], team["members"], team["size"], team["customers"]) == (
        "complete",
        3,
        3,
        ["leader", "ann", "bob"],
    )
    read = shop.get("/api/v1/customers/ann/activities/group-buy-test/")
    assert read["team"]["code"] == code
    assert read["balances"] == {"group-price": 1}
    assert shop.get("/api/v1/customers/nobody/activities/group-buy-test/")["team"] is None
    missing = shop.api.get("/api/v1/activities/group-buy-test/teams/nope/")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_assist_over_rest_to_the_initiators_reward(shop):
    launch("assist", {"helpers_needed": 2})
    code = shop.fire("assist.start", "ivy")["result"]["request"]["code"]
    helped = shop.fire("assist.help", "f1", {"request": code})
    assert [g["benefit"] for g in helped["grants"]] == ["helper-points"]
    assert shop.fire("assist.help", "ivy", {"request": code})["reason"] == "self_help"
    shop.fire("assist.help", "f2", {"request": code})
    assert Grant.objects.get(benefit__code="assist-gift").customer.external_id == "ivy"

    request = shop.get(f"/api/v1/activities/assist-test/assists/{code}/")
    assert (request["state"], request["helpers"], request["customers"]) == (
        "fulfilled",
        2,
        ["f1", "f2"],
    )
    read = shop.get("/api/v1/customers/ivy/activities/assist-test/")
    assert (read["assist"]["code"], read["balances"]["assist-gift"]) == (code, 1)


def test_vote_over_rest_with_votes_left_and_tallies(shop):
    launch("vote", {"votes_per_day": 2})
    first = shop.fire("vote.cast", "v1", {"candidate": "red"})
    assert (first["outcome"], first["result"]["tally"]) == ("granted", 1)
    assert shop.fire("vote.cast", "v1", {"candidate": "red"})["reason"] == "already_counted"
    shop.fire("vote.cast", "v2", {"candidate": "red"})
    shop.fire("vote.cast", "v1", {"candidate": "blue"})
    assert shop.fire("vote.cast", "v1", {"candidate": "green"})["reason"] == "day_limit_reached"
    votes = shop.get("/api/v1/customers/v1/activities/vote-test/")["votes"]
    assert (votes["per_day"], votes["used_today"], votes["left_today"]) == (2, 2, 0)
    assert votes["voted_today"] == ["red", "blue"]
    assert votes["tallies"] == [
        {"candidate": "red", "votes": 2},
        {"candidate": "blue", "votes": 1},
    ]
    assert Grant.objects.filter(benefit__code="vote-points").count() == 3


def test_leaderboard_over_rest_then_prizes_at_the_end(shop):
    activity = launch("leaderboard")
    for customer, points in [("a", 30), ("b", 50), ("c", 30), ("d", 10)]:
        shop.fire("game.scored", customer, {"points": points})
    assert shop.fire("game.scored", "a", {"points": 5})["result"]["score"] == {
        "score": 35,
        "rank": 2,
    }
    board = shop.get("/api/v1/activities/leaderboard-test/leaderboard/?limit=3&customer=c")
    assert board["participants"] == 4
    assert board["top"] == [
        {"rank": 1, "customer": "b", "score": 50},
        {"rank": 2, "customer": "a", "score": 35},
        {"rank": 3, "customer": "c", "score": 30},
    ]
    assert board["customer"] == {"customer": "c", "rank": 3, "score": 30}
    unknown = shop.get("/api/v1/activities/leaderboard-test/leaderboard/?customer=zed")
    assert unknown["customer"] == {"customer": "zed", "rank": None, "score": None}
    bad = shop.api.get("/api/v1/activities/leaderboard-test/leaderboard/?limit=0")
    assert bad.status_code == 400
    read = shop.get("/api/v1/customers/d/activities/leaderboard-test/")
    assert (read["score"], read["rank"], read["participants"]) == (10, 4, 4)

    Activity.objects.filter(pk=activity.pk).update(state="ended")
    assert settlement.settle_gameplays()["settled"] == 1
    prizes = Grant.objects.filter(activity=activity).order_by("benefit__code", "customer_id")
    assert [(g.benefit.code, g.customer.external_id) for g in prizes] == [
        ("bronze", "d"),
        ("gold", "b"),
        ("silver", "a"),
        ("silver", "c"),
    ]
    assert settlement.settle_gameplays()["settled"] == 0


def test_the_storefront_reads_are_in_the_openapi_schema(api):
    paths = api.get("/api/schema/?format=json").json()["paths"]
    for path in (
        "/api/v1/activities/{code}/leaderboard/",
        "/api/v1/activities/{code}/teams/{team}/",
        "/api/v1/activities/{code}/assists/{help_request}/",
    ):
        assert "get" in paths[path], path


@pytest.mark.parametrize(
    ("code", "params", "expected"),
    [
        ("group-buy", {"team_size": 1}, ("parameters.team_size", "invalid_minimum")),
        (
            "leaderboard",
            {
                "prizes": [
                    {"up_to_rank": 3, "benefit": "gold"},
                    {"up_to_rank": 2, "benefit": "silver"},
                ]
            },
            ("parameters.prizes[1].up_to_rank", "tiers_out_of_order"),
        ),
        (
            "leaderboard",
            {"aggregate": "sum", "score_field": None},
            ("parameters.score_field", "score_field_missing"),
        ),
        (
            "vote",
            {"candidates": [{"code": "red"}, {"code": "red"}]},
            ("parameters.candidates[1].code", "duplicate_candidate"),
        ),
        ("assist", {"reward": "nope"}, ("parameters.reward", "unknown_benefit")),
    ],
)
def test_gameplays_that_cannot_work_are_refused_by_field(code, params, expected):
    with pytest.raises(InvalidConfiguration) as caught:
        launch(code, params)
    assert expected in [(d["path"], d["code"]) for d in caught.value.details]


def test_dry_run_from_a_team_with_2_of_3_members(shop):
    activity = launch("group-buy")
    customer = Customer.objects.create(external_id="tester")
    with transaction.atomic():
        get("group-buy").start_state(
            activity=activity, customer=customer, state={"team_members": 2}, now=timezone.now()
        )
        joined = shop.fire("team.join", "tester", {"team": "dry-run"})
        assert joined["result"]["team"]["state"] == "complete"
        assert Grant.objects.filter(benefit__code="group-price").count() == 3
        transaction.set_rollback(True)
    assert not Team.objects.exists()


def test_dry_run_from_a_request_one_help_short(shop):
    activity = launch("assist", {"helpers_needed": 3})
    customer = Customer.objects.create(external_id="tester")
    get("assist").start_state(
        activity=activity, customer=customer, state={"helpers": 2}, now=timezone.now()
    )
    helped = shop.fire("assist.help", "tester", {"request": "dry-run"})
    assert helped["result"]["request"]["state"] == "fulfilled"
    assert Grant.objects.get(benefit__code="assist-gift").customer.external_id == (
        "dry-run-initiator"
    )


def test_dry_run_from_votes_used_and_a_score(shop):
    vote = launch("vote", {"votes_per_day": 2})
    voter = Customer.objects.create(external_id="voter")
    get("vote").start_state(
        activity=vote, customer=voter, state={"votes_used_today": 2}, now=timezone.now()
    )
    assert shop.fire("vote.cast", "voter", {"candidate": "red"})["reason"] == "day_limit_reached"
    board = launch("leaderboard")
    player = Customer.objects.create(external_id="player")
    get("leaderboard").start_state(
        activity=board, customer=player, state={"score": 90}, now=timezone.now()
    )
    assert shop.fire("game.scored", "player", {"points": 10})["result"]["score"]["score"] == 100


def test_a_coupon_prize_gets_its_code_and_validity_at_settlement(shop):
    gameplay = get("leaderboard")
    activity = create_from_gameplay(
        gameplay_code="leaderboard",
        parameters={**gameplay.defaults(), "prizes": [{"up_to_rank": 2, "benefit": "gold"}]},
        activity={
            "code": "coupon-board",
            "name": "Test",
            "timezone": "Asia/Shanghai",
            **WINDOW,
            "segment": None,
            "benefits": [{"code": "gold", "kind": "coupon", "value": "20.00", "stock": 1}],
        },
        launch_bypassing_review_by="test",
    )
    activity.benefits.filter(code="gold").update(code_prefix="TOP", code_length=8, valid_days=2)
    shop.fire("game.scored", "a", {"points": 30})
    shop.fire("game.scored", "b", {"points": 20})
    Activity.objects.filter(pk=activity.pk).update(state="ended")
    ended = timezone.now()

    assert settlement.settle_gameplays(now=ended)["settled"] == 1
    [prize] = Grant.objects.filter(activity=activity)
    assert prize.customer.external_id == "a"
    assert (prize.code[:3], len(prize.code), prize.value) == ("TOP", 11, 20)
    last_day = ended.astimezone(ZoneInfo("Asia/Shanghai")).date() + dt.timedelta(days=2)
    assert prize.valid_until == dt.datetime.combine(last_day, dt.time(0), ZoneInfo("Asia/Shanghai"))
    coupons = shop.get("/api/v1/customers/a/coupons/")["results"]
    assert [(c["code"], c["benefit"]) for c in coupons] == [(prize.code, "gold")]
    result = Settlement.objects.get(activity=activity).result["prizes"]
    assert [(p["customer"], p.get("skipped")) for p in result] == [
        ("a", None),
        ("b", "out_of_stock"),
    ]
    assert activity.benefits.get(code="gold").stock_remaining == 0


def test_a_pool_coupon_prize_without_free_codes_is_skipped_and_gives_its_stock_back(shop):
    gameplay = get("leaderboard")
    activity = create_from_gameplay(
        gameplay_code="leaderboard",
        parameters={**gameplay.defaults(), "prizes": [{"up_to_rank": 1, "benefit": "gold"}]},
        activity={
            "code": "pool-board",
            "name": "Test",
            "timezone": "Asia/Shanghai",
            **WINDOW,
            "segment": None,
            "benefits": [{"code": "gold", "kind": "coupon", "value": "20.00", "stock": 3}],
        },
        launch_bypassing_review_by="test",
    )
    activity.benefits.filter(code="gold").update(code_source=CodeSource.POOL)
    shop.fire("game.scored", "a", {"points": 30})
    Activity.objects.filter(pk=activity.pk).update(state="ended")

    assert settlement.settle_gameplays()["settled"] == 1
    assert not Grant.objects.filter(activity=activity).exists()
    [prize] = Settlement.objects.get(activity=activity).result["prizes"]
    assert (prize["customer"], prize["skipped"]) == ("a", "out_of_stock")
    assert activity.benefits.get(code="gold").stock_remaining == 3


@pytest.mark.parametrize(
    ("code", "credit_channel"),
    [("group-buy", "team.completed"), ("assist", "assist.fulfilled")],
)
def test_the_storefront_cannot_fire_the_channel_that_credits_others(shop, code, credit_channel):
    launch(code)
    assert Channel.objects.get(code=credit_channel).internal is True
    response = shop.api.post(
        "/api/v1/events/",
        data=json.dumps({"channel": credit_channel, "customer": "mallory", "payload": {}}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="claim-the-reward",
    )
    assert (response.status_code, response.json()["code"]) == (403, "internal_channel")
    assert not Event.objects.filter(channel__code=credit_channel).exists()
    assert not Grant.objects.filter(customer__external_id="mallory").exists()

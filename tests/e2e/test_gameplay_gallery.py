"""Every gameplay but the check-in streak (tests/e2e/test_gameplay_flow.py), the operator's way
and in both languages: picked in the gallery, its form filled (a parameter changed, benefits
picked from the list), saved, dry-run from a given state, submitted, approved and launched by
another user, then driven over REST to its reward, with the exact grants asserted.
The workers' part is played in-process (tests/e2e/storefront.py).
"""

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from activities.models import Activity, ActivityState, Grant
from activities.services import settlement
from tests.e2e.scenario import login, role_user
from tests.e2e.storefront import Storefront, open_storefront

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LANGUAGES = ["zh-hans", "en"]
CHANNEL = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def storefront(live_server) -> Iterator[Storefront]:
    with open_storefront(live_server.url) as shop:
        yield shop


@pytest.fixture
def operator_page(new_page, request):
    """A page in the test's language (its `language` parameter), the operator logged in; an
    approver exists to approve on the same page later."""
    role_user("Operator", "olivia")
    role_user("Approver", "arthur")
    page = new_page(request.node.callspec.params["language"])
    login(page, "olivia")
    return page


def create(
    page: Any, shot: Callable, *, gameplay: str, code: str, fill: Callable[[Any], None]
) -> Activity:
    """Pick the gameplay in the gallery, fill the activity and `fill` its settings, save."""
    now = timezone.now().astimezone(SHANGHAI)
    page.goto("/admin/activities/activity/add/")
    page.wait_for_selector(f"[data-gameplay={gameplay}]")
    shot(page, "01-gallery")
    page.click(f"[data-gameplay={gameplay}] h2 a")
    page.fill("#id_code", code)
    page.fill("#id_name", code.replace("-", " ").capitalize())
    page.fill("#id_starts_at", (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_ends_at", (now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"))
    fill(page)
    shot(page, "02-form")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    activity = Activity.objects.get(code=code)
    assert activity.template.gameplay == gameplay
    shot(page, "03-created")
    return activity


def dry_run(
    page: Any,
    shot: Callable,
    activity: Activity,
    *,
    channel: str,
    customer: str,
    payload: dict[str, Any] | None = None,
    state: dict[str, int] | None = None,
    name: str = "04-dry-run",
) -> tuple[str, list[str], list[str]]:
    """Dry-run from the change page: (outcome, benefits that would be granted, channels of the
    events that would be emitted)."""
    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    page.click("[data-action=dry_run]")
    page.select_option("#id_channel", label=channel)
    page.fill("#id_customer", customer)
    page.fill("#id_payload", json.dumps(payload or {}))
    for field, value in (state or {}).items():
        page.fill(f"#id_param_{field}", str(value))
    page.click("[data-action=dry-run]")
    page.wait_for_selector("#dry-run-result")
    shot(page, name)
    outcome = page.locator("[data-outcome]").get_attribute("data-outcome")
    grants = page.locator(".gambit-grants tr td:first-child").all_inner_texts()
    sent = page.locator(".gambit-sends li code:first-of-type").all_inner_texts()
    return outcome, grants, [text for text in sent if CHANNEL.fullmatch(text)]


def launch(page: Any, shot: Callable, activity: Activity) -> None:
    """The operator submits; on the same page the approver logs in, approves and launches."""
    change = f"/admin/activities/activity/{activity.pk}/change/"
    page.goto(change)
    page.click("[data-action=submit]")
    page.wait_for_selector(".messagelist .success")
    page.click("#logout-form button")
    login(page, "arthur")
    page.goto(change)
    page.click("[data-action=approve]")
    page.wait_for_selector(".messagelist .success")
    page.click("[data-action=schedule]")
    page.wait_for_selector(".messagelist .success")
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    shot(page, "05-launched")


@pytest.mark.parametrize("language", LANGUAGES)
def test_quiz_lottery(operator_page, shot, storefront, language):
    page = operator_page

    def fill(page):
        page.fill("#id_param_pass_score", "70")
        page.select_option("#id_param_prizes__0__benefit", "coupon-5")
        page.select_option("#id_param_prizes__1__benefit", "")
        page.fill("#id_param_prizes__1__weight", "")

    activity = create(page, shot, gameplay="quiz-lottery", code="quiz-draw", fill=fill)
    assert activity.template.gameplay_parameters["prizes"] == [{"benefit": "coupon-5", "weight": 1}]
    assert dry_run(
        page, shot, activity, channel="quiz.completed", customer="alice", payload={"score": 70}
    ) == ("granted", ["chance"], [])
    launch(page, shot, activity)

    assert storefront.fire("quiz.completed", "alice", {"score": 69})["reason"] == "rule_not_met"
    assert storefront.fire("quiz.completed", "alice", {"score": 70})["outcome"] == "granted"
    drawn = storefront.fire("lottery.draw", "alice")
    assert [grant["benefit"] for grant in drawn["grants"]] == ["coupon-5"]
    assert storefront.grants("alice") == [("chance", 1), ("coupon-5", 1)]
    assert storefront.coupons("alice") == [("coupon-5", "5.00")]
    assert storefront.fire("lottery.draw", "alice")["reason"] == "rule_not_met"


@pytest.mark.parametrize("language", LANGUAGES)
def test_tasks(operator_page, shot, storefront, language):
    page = operator_page

    def fill(page):
        page.fill("#id_param_tasks__0__target", "2")
        page.select_option("#id_param_tasks__1__reward", "")
        page.select_option("#id_param_all_reward", "coupon-all")

    activity = create(page, shot, gameplay="tasks", code="three-tasks", fill=fill)
    tasks = activity.template.gameplay_parameters["tasks"]
    assert [(task["key"], task["target"], task.get("reward")) for task in tasks] == [
        ("view", 2, "points"),
        ("share", 1, None),
        ("pay", 1, "points"),
    ]
    assert dry_run(
        page, shot, activity, channel="order.paid", customer="alice", payload={"amount": 60}
    ) == ("granted", ["points"], [])
    launch(page, shot, activity)

    storefront.fire("product.viewed", "alice")
    storefront.fire("order.paid", "alice", {"amount": 30})
    storefront.fire("product.viewed", "alice")
    storefront.fire("product.shared", "alice")
    assert storefront.get("/api/v1/customers/alice/activities/three-tasks/")["tasks"]["left"] == 1
    storefront.fire("order.paid", "alice", {"amount": 60})
    assert storefront.grants("alice") == [("points", 5), ("points", 20), ("coupon-all", 1)]
    assert storefront.coupons("alice") == [("coupon-all", "10.00")]
    progress = storefront.get("/api/v1/customers/alice/activities/three-tasks/")["tasks"]
    assert (progress["done"], progress["left"]) == (3, 0)


@pytest.mark.parametrize("language", LANGUAGES)
def test_assist(operator_page, shot, storefront, language):
    page = operator_page

    def fill(page):
        page.fill("#id_param_helpers_needed", "2")
        page.select_option("#id_param_reward", "assist-gift")
        page.select_option("#id_param_helper_reward", "helper-points")

    activity = create(page, shot, gameplay="assist", code="help-me", fill=fill)
    assert activity.template.gameplay_parameters["helpers_needed"] == 2
    # A request one help short: this help fulfils it and credits the initiator.
    assert dry_run(
        page,
        shot,
        activity,
        channel="assist.help",
        customer="fay",
        payload={"request": "dry-run"},
        state={"helpers": 1},
    ) == ("granted", ["helper-points"], ["assist.fulfilled"])
    assert not activity.help_requests.exists()
    launch(page, shot, activity)

    code = storefront.fire("assist.start", "ivy")["result"]["request"]["code"]
    assert storefront.fire("assist.help", "ivy", {"request": code})["reason"] == "self_help"
    storefront.fire("assist.help", "ann", {"request": code})
    storefront.fire("assist.help", "bob", {"request": code})
    assert storefront.grants("ivy") == [("assist-gift", 1)]
    assert storefront.grants("ann") == storefront.grants("bob") == [("helper-points", 1)]
    request = storefront.get(f"/api/v1/activities/help-me/assists/{code}/")
    assert (request["state"], request["customers"]) == ("fulfilled", ["ann", "bob"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_group_buy(operator_page, shot, storefront, language):
    page = operator_page

    def fill(page):
        page.fill("#id_param_lifetime_hours", "48")
        page.fill("#id_benefits-0-value", "15.00")
        page.select_option("#id_param_reward", "group-price")

    activity = create(page, shot, gameplay="group-buy", code="team-of-three", fill=fill)
    assert activity.template.gameplay_parameters["lifetime_hours"] == 48
    # A team with 2 of its 3 members: this join completes it.
    assert dry_run(
        page,
        shot,
        activity,
        channel="team.join",
        customer="joe",
        payload={"team": "dry-run"},
        state={"team_members": 2},
    ) == ("completed", [], ["team.completed"] * 3)
    assert not activity.teams.exists()
    launch(page, shot, activity)

    team = storefront.fire("team.open", "leader")["result"]["team"]["code"]
    storefront.fire("team.join", "ann", {"team": team})
    assert storefront.fire("team.join", "ann", {"team": team})["reason"] == "already_in_team"
    storefront.fire("team.join", "bob", {"team": team})
    for member in ("leader", "ann", "bob"):
        assert storefront.grants(member) == [("group-price", 1)]
        assert storefront.coupons(member) == [("group-price", "15.00")]
    read = storefront.get(f"/api/v1/activities/team-of-three/teams/{team}/")
    assert (read["state"], read["customers"]) == ("complete", ["leader", "ann", "bob"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_vote(operator_page, shot, storefront, language):
    page = operator_page

    def fill(page):
        page.fill("#id_param_votes_per_day", "2")
        page.fill("#id_param_candidates__3__code", "yellow")
        page.select_option("#id_param_reward", "vote-points")

    activity = create(page, shot, gameplay="vote", code="best-colour", fill=fill)
    params = activity.template.gameplay_parameters
    assert (params["votes_per_day"], [c["code"] for c in params["candidates"]]) == (
        2,
        ["red", "blue", "green", "yellow"],
    )
    assert dry_run(
        page,
        shot,
        activity,
        channel="vote.cast",
        customer="vic",
        payload={"candidate": "yellow"},
        state={"votes_used_today": 1},
    ) == ("granted", ["vote-points"], [])
    assert dry_run(
        page,
        shot,
        activity,
        channel="vote.cast",
        customer="vic",
        payload={"candidate": "yellow"},
        state={"votes_used_today": 2},
        name="04-dry-run-no-votes-left",
    ) == ("rejected", [], [])
    launch(page, shot, activity)

    assert storefront.fire("vote.cast", "vic", {"candidate": "yellow"})["result"]["tally"] == 1
    assert (
        storefront.fire("vote.cast", "vic", {"candidate": "yellow"})["reason"] == "already_counted"
    )
    storefront.fire("vote.cast", "vic", {"candidate": "red"})
    assert (
        storefront.fire("vote.cast", "vic", {"candidate": "blue"})["reason"] == "day_limit_reached"
    )
    storefront.fire("vote.cast", "wen", {"candidate": "yellow"})
    assert (
        storefront.fire("vote.cast", "wen", {"candidate": "purple"})["reason"] == "unknown_subject"
    )
    assert storefront.grants("vic") == [("vote-points", 1), ("vote-points", 1)]
    assert storefront.grants("wen") == [("vote-points", 1)]
    votes = storefront.get("/api/v1/customers/vic/activities/best-colour/")["votes"]
    assert (votes["left_today"], votes["voted_today"]) == (0, ["yellow", "red"])
    assert votes["tallies"] == [
        {"candidate": "yellow", "votes": 2},
        {"candidate": "red", "votes": 1},
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_leaderboard(operator_page, shot, storefront, language):
    page = operator_page

    def fill(page):
        # The gold prize becomes a coupon: settlement must give it a code.
        page.select_option("#id_benefits-0-kind", "coupon")
        page.fill("#id_benefits-0-value", "20.00")
        page.fill("#id_param_prizes__2__up_to_rank", "4")
        page.select_option("#id_param_prizes__2__benefit", "bronze")

    activity = create(page, shot, gameplay="leaderboard", code="top-scores", fill=fill)
    assert activity.template.gameplay_parameters["prizes"] == [
        {"up_to_rank": 1, "benefit": "gold"},
        {"up_to_rank": 3, "benefit": "silver"},
        {"up_to_rank": 4, "benefit": "bronze"},
    ]
    assert dry_run(
        page,
        shot,
        activity,
        channel="game.scored",
        customer="amy",
        payload={"points": 10},
        state={"score": 90},
    ) == ("completed", [], [])
    launch(page, shot, activity)

    for customer, points in [("amy", 50), ("ben", 70), ("cat", 10), ("amy", 30), ("dan", 5)]:
        storefront.fire("game.scored", customer, {"points": points})
    board = storefront.get("/api/v1/activities/top-scores/leaderboard/?limit=3&customer=dan")
    assert [(row["customer"], row["score"]) for row in board["top"]] == [
        ("amy", 80),
        ("ben", 70),
        ("cat", 10),
    ]
    assert board["customer"] == {"customer": "dan", "rank": 4, "score": 5}

    page.goto(f"/admin/activities/activity/{activity.pk}/change/")
    page.click("[data-action=end]")
    page.click("[data-action=confirm]")
    page.wait_for_selector(".messagelist .success")
    shot(page, "06-ended")
    assert settlement.settle_gameplays()["settled"] == 1  # what beat runs every minute
    assert storefront.grants("amy") == [("gold", 1)]
    assert storefront.coupons("amy") == [("gold", "20.00")]
    assert storefront.grants("ben") == storefront.grants("cat") == [("silver", 1)]
    assert storefront.grants("dan") == [("bronze", 1)]
    assert Grant.objects.filter(activity=activity).count() == 4
    assert settlement.settle_gameplays()["settled"] == 0

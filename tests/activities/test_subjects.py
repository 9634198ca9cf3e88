"""The gameplay-subject processors in-process, against PostgreSQL: teams, help requests, votes,
leaderboards, crediting another customer, settlement."""

import datetime as dt
import random

import pytest
from django.db import transaction
from django.utils import timezone
from django_fsm_log.models import StateLog

from activities.engine.errors import Rejected
from activities.models import (
    Activity,
    Event,
    Grant,
    HelpRequest,
    RunOutcome,
    Score,
    ScoreBucket,
    Settlement,
    SubjectCounter,
    Team,
    TeamMember,
)
from activities.selectors_subjects import naive_rank_of, rank_of, tallies
from activities.services import settlement
from segments.models import Customer
from tests.activities.subject_builders import (
    Driver,
    build_assist,
    build_group_buy,
    build_leaderboard,
    build_vote,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def drive():
    return Driver()


def _end(activity: Activity) -> None:
    Activity.objects.filter(pk=activity.pk).update(state="ended")


# --- Group-buy ---------------------------------------------------------------------------------


def test_a_team_fills_completes_and_credits_every_member_once(drive):
    build_group_buy(size=3)
    opened = drive.fire("team.open", "leader")
    assert opened.outcome == RunOutcome.COMPLETED
    team = opened.result["team"]
    assert (team["state"], team["size"], team["members"], team["customers"]) == (
        "forming",
        3,
        1,
        ["leader"],
    )
    code = team["code"]

    second = drive.fire("team.join", "ann", {"team": code})
    assert second.result["team"]["members"] == 2
    assert Event.objects.filter(channel__code="team.completed").count() == 0

    third = drive.fire("team.join", "bob", {"team": code})
    assert third.result["team"]["state"] == "complete"
    assert third.result["team"]["customers"] == ["leader", "ann", "bob"]
    credits = Event.objects.filter(channel__code="team.completed")
    assert sorted(credits.values_list("customer__external_id", flat=True)) == [
        "ann",
        "bob",
        "leader",
    ]
    assert {e.activity.code for e in credits} == {"group"}
    assert {e.payload["team"] for e in credits} == {code}

    rewarded = drive.drain()
    assert [r.outcome for r in rewarded] == [RunOutcome.GRANTED] * 3
    assert sorted(
        Grant.objects.filter(benefit__code="group-price").values_list(
            "customer__external_id", flat=True
        )
    ) == ["ann", "bob", "leader"]

    late = drive.fire("team.join", "cid", {"team": code})
    assert (late.outcome, late.reason) == (RunOutcome.REJECTED, "team_full")
    log = StateLog.objects.for_(Team.objects.get(code=code))
    assert [(entry.source_state, entry.state) for entry in log] == [("forming", "complete")]
    assert not TeamMember.objects.filter(open=True).exists()


def test_one_forming_team_per_customer_and_clear_refusals(drive):
    build_group_buy(size=3)
    code = drive.fire("team.open", "leader").result["team"]["code"]
    again = drive.fire("team.open", "leader")
    assert (again.outcome, again.reason) == (RunOutcome.REJECTED, "already_in_team")
    assert Team.objects.count() == 1
    drive.fire("team.join", "ann", {"team": code})
    twice = drive.fire("team.join", "ann", {"team": code})
    assert (twice.outcome, twice.reason) == (RunOutcome.REJECTED, "already_in_team")
    elsewhere = drive.fire("team.open", "ann")
    assert (elsewhere.outcome, elsewhere.reason) == (RunOutcome.REJECTED, "already_in_team")
    unknown = drive.fire("team.join", "bob", {"team": "nope"})
    assert (unknown.outcome, unknown.reason) == (RunOutcome.REJECTED, "team_not_found")
    missing = drive.fire("team.join", "bob", {})
    assert (missing.outcome, missing.reason) == (RunOutcome.REJECTED, "team_missing")
    assert Team.objects.get().members == 2


def test_an_expired_team_fails_and_frees_its_members(drive):
    build_group_buy(size=3)
    code = drive.fire("team.open", "leader").result["team"]["code"]
    drive.fire("team.join", "ann", {"team": code})
    Team.objects.filter(code=code).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    late = drive.fire("team.join", "bob", {"team": code})
    assert (late.outcome, late.reason) == (RunOutcome.REJECTED, "team_expired")
    assert settlement.settle_gameplays()["teams_expired"] == 1
    team = Team.objects.get(code=code)
    assert (team.state, team.members) == ("expired", 2)
    assert [(e.source_state, e.state) for e in StateLog.objects.for_(team)] == [
        ("forming", "expired")
    ]
    # Free again: ann opens a team of her own.
    assert drive.fire("team.open", "ann").result["team"]["customers"] == ["ann"]
    assert not Grant.objects.exists()


# --- Assist ------------------------------------------------------------------------------------


def test_helpers_fulfil_a_request_once_and_the_initiator_is_credited(drive):
    build_assist(needed=2)
    opened = drive.fire("assist.start", "ivy")
    request = opened.result["request"]
    assert (request["state"], request["needed"], request["helpers"], request["created"]) == (
        "open",
        2,
        0,
        True,
    )
    # Asking again returns the open request.
    assert drive.fire("assist.start", "ivy").result["request"]["code"] == request["code"]

    own = drive.fire("assist.help", "ivy", {"request": request["code"]})
    assert (own.outcome, own.reason) == (RunOutcome.REJECTED, "self_help")
    first = drive.fire("assist.help", "f1", {"request": request["code"]})
    assert first.result["request"]["helpers"] == 1
    repeat = drive.fire("assist.help", "f1", {"request": request["code"]})
    assert (repeat.outcome, repeat.reason) == (RunOutcome.REJECTED, "already_helped")
    done = drive.fire("assist.help", "f2", {"request": request["code"]})
    assert done.result["request"]["state"] == "fulfilled"
    assert done.result["request"]["customers"] == ["f1", "f2"]
    late = drive.fire("assist.help", "f3", {"request": request["code"]})
    assert (late.outcome, late.reason) == (RunOutcome.REJECTED, "request_fulfilled")

    credits = drive.drain()
    assert [(r.customer.external_id, r.outcome) for r in credits] == [("ivy", RunOutcome.GRANTED)]
    assert Grant.objects.get(benefit__code="free-gift").customer.external_id == "ivy"
    assert HelpRequest.objects.get().helpers == 2


def test_new_customers_only_and_a_daily_cap_per_helper(drive):
    build_assist(needed=5, new_only=True, daily_cap=1)
    Customer.objects.create(external_id="old-friend")
    code = drive.fire("assist.start", "ivy").result["request"]["code"]
    old = drive.fire("assist.help", "old-friend", {"request": code})
    assert (old.outcome, old.reason) == (RunOutcome.REJECTED, "not_a_new_customer")
    assert drive.fire("assist.help", "newbie", {"request": code}).outcome == "completed"
    second = drive.fire("assist.start", "jo").result["request"]["code"]
    capped = drive.fire("assist.help", "newbie", {"request": second})
    assert (capped.outcome, capped.reason) == (RunOutcome.REJECTED, "day_limit_reached")


def test_an_expired_request_counts_no_more_help(drive):
    build_assist(needed=2)
    code = drive.fire("assist.start", "ivy").result["request"]["code"]
    HelpRequest.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    late = drive.fire("assist.help", "f1", {"request": code})
    assert (late.outcome, late.reason) == (RunOutcome.REJECTED, "request_expired")
    assert settlement.settle_gameplays()["requests_expired"] == 1
    # A new request opens once the old one expired.
    fresh = drive.fire("assist.start", "ivy").result["request"]
    assert fresh["code"] != code and fresh["created"] is True


# --- Vote ------------------------------------------------------------------------------------


def test_votes_per_day_never_twice_for_one_candidate_with_live_tallies(drive):
    build_vote(per_day=2, candidates=["red", "blue", "green"])
    first = drive.fire("vote.cast", "v1", {"candidate": "red"})
    assert first.result["votes"] == {"subject": "red", "count": 1}
    assert first.result["tally"] == 1
    twice = drive.fire("vote.cast", "v1", {"candidate": "red"})
    assert (twice.outcome, twice.reason) == (RunOutcome.REJECTED, "already_counted")
    assert drive.fire("vote.cast", "v1", {"candidate": "blue"}).result["tally"] == 1
    third = drive.fire("vote.cast", "v1", {"candidate": "green"})
    assert (third.outcome, third.reason) == (RunOutcome.REJECTED, "day_limit_reached")
    unknown = drive.fire("vote.cast", "v2", {"candidate": "purple"})
    assert (unknown.outcome, unknown.reason) == (RunOutcome.REJECTED, "unknown_subject")
    assert drive.fire("vote.cast", "v2", {"candidate": "red"}).result["tally"] == 2
    activity = Activity.objects.get(code="vote")
    assert tallies(activity_id=activity.pk, kind="candidate", key="votes", limit=10) == [
        ("red", 2),
        ("blue", 1),
    ]
    assert SubjectCounter.objects.get(subject="red").count == 2


# --- Leaderboard -----------------------------------------------------------------------------


def test_scores_rank_by_score_then_who_reached_it_first(drive):
    activity = build_leaderboard()
    assert drive.fire("game.scored", "a", {"points": 10}).result["score"] == {
        "score": 10,
        "rank": 1,
    }
    assert drive.fire("game.scored", "b", {"points": 10}).result["score"]["rank"] == 2
    assert drive.fire("game.scored", "c", {"points": 4}).result["score"]["rank"] == 3
    assert drive.fire("game.scored", "c", {"points": 7}).result["score"] == {
        "score": 11,
        "rank": 1,
    }
    bad = drive.fire("game.scored", "d", {"points": "lots"})
    assert (bad.outcome, bad.reason) == (RunOutcome.REJECTED, "score_missing")
    for external_id in "abc":
        customer = Customer.objects.get(external_id=external_id)
        assert rank_of(activity_id=activity.pk, customer_id=customer.pk) == naive_rank_of(
            activity_id=activity.pk, customer_id=customer.pk
        )
    exact = ScoreBucket.objects.filter(activity=activity, level=0)
    assert dict(exact.values_list("block", "holders")) == {10: 2, 4: 0, 11: 1}
    assert ScoreBucket.objects.get(activity=activity, level=4, block=0).holders == 3


@pytest.mark.parametrize(
    ("aggregate", "points", "expected"), [("max", [5, 9, 3], 9), ("count", [5, 9, 3], 3)]
)
def test_max_and_count_aggregates(drive, aggregate, points, expected):
    build_leaderboard(aggregate=aggregate)
    for value in points:
        drive.fire("game.scored", "a", {"points": value})
    assert Score.objects.get().score == expected


def test_settlement_hands_prizes_to_the_top_ranks_once(drive):
    activity = build_leaderboard()
    for customer, points in [("a", 50), ("b", 40), ("c", 30), ("d", 20)]:
        drive.fire("game.scored", customer, {"points": points})
    assert settlement.settle_activity(activity_id=activity.pk) is None  # still running
    _end(activity)
    settled = settlement.settle_activity(activity_id=activity.pk)
    assert [(p["rank"], p["customer"], p["benefit"]) for p in settled.result["prizes"]] == [
        (1, "a", "gold"),
        (2, "b", "silver"),
        (3, "c", "silver"),
    ]
    assert settlement.settle_activity(activity_id=activity.pk) is None
    assert settlement.settle_gameplays()["settled"] == 0
    grants = Grant.objects.filter(activity=activity).order_by("benefit__code", "customer_id")
    assert [(g.benefit.code, g.customer.external_id) for g in grants] == [
        ("gold", "a"),
        ("silver", "b"),
        ("silver", "c"),
    ]
    assert Settlement.objects.get(activity=activity).settled_at is not None


def test_settlement_expires_what_is_still_open(drive):
    activity = build_group_buy(size=3)
    drive.fire("team.open", "leader")
    _end(activity)
    assert settlement.settle_gameplays() == {
        "teams_expired": 0,
        "requests_expired": 0,
        "settled": 1,
    }
    assert Team.objects.get().state == "expired"


def test_the_count_tree_ranks_exactly_across_every_level():
    from activities.models.leaderboard import MAX_SCORE
    from activities.services.leaderboard import Aggregate, add_score

    activity = build_leaderboard(prizes=[])
    rng = random.Random(7)
    edges = [-MAX_SCORE, -(2**35), -257, -256, -1, 0, 1, 255, 256, 65_535, 65_536, 2**24]
    edges += [2**32 - 1, 2**32, 2**38, MAX_SCORE]
    customers = [Customer.objects.create(external_id=f"t-{n}") for n in range(40)]
    now = timezone.now()
    for step in range(160):
        customer = rng.choice(customers)
        score = rng.choice(edges) if step % 3 else rng.randint(-(2**20), 2**20)
        try:
            # As a run would: a refusal rolls back the score's savepoint.
            with transaction.atomic():
                add_score(
                    activity_id=activity.pk,
                    customer_id=customer.pk,
                    aggregate=Aggregate.MAX if step < 80 else Aggregate.SUM,
                    value=score if step < 80 else rng.randint(-300, 300),
                    now=now + dt.timedelta(seconds=rng.randint(0, 5)),
                )
        except Rejected as refused:
            assert refused.reason == "score_out_of_range"
    scored = Score.objects.filter(activity=activity)
    ranks = []
    for row in scored:
        ours = rank_of(activity_id=activity.pk, customer_id=row.customer_id)
        assert ours == naive_rank_of(activity_id=activity.pk, customer_id=row.customer_id)
        ranks.append(ours[0])
    assert sorted(ranks) == list(range(1, scored.count() + 1))

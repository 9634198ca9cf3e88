"""Issue 2's promises over HTTP, through gunicorn, Redis and a real Celery worker."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from activities.models import Benefit, ChainRun, Event, Grant, ParticipationCounter, RunOutcome
from tests.conftest import wait_until
from tests.factories import CustomerFactory, build_quiz_lottery, make_api_key

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def post_event(
    client: httpx.Client,
    channel: str,
    customer: str,
    payload: dict,
    key: str | None = None,
    wait: int | None = 10,
) -> httpx.Response:
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    if wait:
        headers["Prefer"] = f"wait={wait}"
    return client.post(
        "/api/v1/events/",
        json={"channel": channel, "customer": customer, "payload": payload},
        headers=headers,
    )


@pytest.fixture
def stack(start_stack):
    return start_stack()


@pytest.fixture
def client(stack):
    _, raw = make_api_key()
    with httpx.Client(
        base_url=stack.base_url, timeout=30, headers={"Authorization": f"Api-Key {raw}"}
    ) as client:
        yield client


def run_of(response: httpx.Response) -> dict:
    body = response.json()
    assert body["status"] == "done", body
    assert len(body["runs"]) == 1, body
    return body["runs"][0]


def test_appendix_flow_end_to_end(client):
    build_quiz_lottery()

    passed = run_of(post_event(client, "quiz.completed", "alice", {"score": 80}))
    assert passed["outcome"] == "granted"
    assert [(g["benefit"], g["quantity"]) for g in passed["grants"]] == [("chance", 1)]
    assert [s["processor"] for s in passed["steps"]] == [
        "rule_check",
        "participation_limit",
        "grant_benefit",
        "build_result",
    ]

    low = run_of(post_event(client, "quiz.completed", "bob", {"score": 40}))
    assert (low["outcome"], low["reason"], low["grants"]) == ("rejected", "rule_not_met", [])

    second = run_of(post_event(client, "quiz.completed", "alice", {"score": 95}))
    assert (second["outcome"], second["reason"]) == ("rejected", "day_limit_reached")

    draw = run_of(post_event(client, "lottery.draw", "alice", {}))
    assert draw["outcome"] == "granted"
    assert [g["benefit"] for g in draw["grants"]] in (["big-prize"], ["coupon-5"])
    assert draw["result"]["balances"]["chance"] == 0

    no_chance = run_of(post_event(client, "lottery.draw", "alice", {}))
    assert (no_chance["outcome"], no_chance["reason"]) == ("rejected", "rule_not_met")

    grants = client.get("/api/v1/customers/alice/grants/").json()["results"]
    assert sorted(g["benefit"] for g in grants) == sorted(["chance", draw["grants"][0]["benefit"]])
    participation = client.get("/api/v1/activities/spring/participation/alice/").json()
    assert participation["balances"]["chance"] == 0


def test_202_then_poll(client):
    build_quiz_lottery()
    accepted = post_event(client, "quiz.completed", "carol", {"score": 70}, wait=None)
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["status"] == "pending"
    detail = wait_until(lambda: (r := client.get(body["url"]).json())["status"] == "done" and r)
    assert detail["runs"][0]["outcome"] == "granted"


def test_100_concurrent_posts_with_one_key(client):
    build_quiz_lottery()
    key = "same-key-for-all"

    def fire(_):
        return post_event(client, "quiz.completed", "dave", {"score": 99}, key=key, wait=None)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(fire, range(100)))
    assert [(r.status_code, r.text) for r in responses if r.status_code not in (200, 202)] == []
    assert len({r.json()["id"] for r in responses}) == 1
    event_id = responses[0].json()["id"]
    wait_until(lambda: Event.objects.get(pk=event_id).state == "done")
    assert Event.objects.count() == 1
    assert ChainRun.objects.filter(event_id=event_id).count() == 1
    assert Grant.objects.count() == 1


def test_500_concurrent_draws_respect_stock(client):
    activity = build_quiz_lottery(prize_stock=10, coupon_stock=20)
    customers = [f"drawer-{i}" for i in range(500)]
    grant_chances(activity, customers)

    def draw(customer):
        return post_event(client, "lottery.draw", customer, {}, wait=None)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(draw, customers))
    assert {r.status_code for r in responses} == {202}
    wait_until(lambda: Event.objects.filter(state="done").count() == 500, timeout=180)
    prizes = Grant.objects.filter(benefit__code__in=["big-prize", "coupon-5"])
    assert prizes.filter(benefit__code="big-prize").count() == 10
    assert prizes.filter(benefit__code="coupon-5").count() == 20
    for benefit in Benefit.objects.filter(code__in=["big-prize", "coupon-5"]):
        assert benefit.stock_remaining == 0
    assert ChainRun.objects.filter(outcome=RunOutcome.FAILED).count() == 0
    # The run that took the last prize paused the activity (on_exhausted=pause): later draws
    # found it paused and spent nothing; every draw that ran spent its chance.
    activity.refresh_from_db()
    wait_until(lambda: activity.__class__.objects.get(pk=activity.pk).state == "paused")
    ran = ChainRun.objects.filter(activity=activity).count()
    assert Grant.objects.filter(benefit__code="chance", state="redeemed").count() == ran
    assert 30 <= ran <= 500


def test_50_concurrent_quizzes_for_one_customer_grant_once(client):
    build_quiz_lottery()

    def quiz(_):
        return post_event(client, "quiz.completed", "erin", {"score": 90}, wait=None)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(quiz, range(50)))
    assert {r.status_code for r in responses} == {202}
    wait_until(lambda: ChainRun.objects.filter(outcome__gt="").count() == 50, timeout=120)
    assert Grant.objects.filter(customer__external_id="erin").count() == 1
    assert (
        ChainRun.objects.filter(outcome=RunOutcome.REJECTED, reason="day_limit_reached").count()
        == 49
    )
    assert ParticipationCounter.objects.get(key="quiz-chance").count == 1


def test_broker_outage_loses_nothing(start_stack, redis_server):
    build_quiz_lottery(coupon_stock=1000)
    stack = start_stack(
        env_overrides={
            "CELERY_BROKER_URL": redis_server.url,
            "GAMBIT_SWEEP_INTERVAL": "1",
            "GAMBIT_SWEEP_AFTER_SECONDS": "2",
        },
        beat=True,
    )
    _, raw = make_api_key()
    with httpx.Client(
        base_url=stack.base_url, timeout=30, headers={"Authorization": f"Api-Key {raw}"}
    ) as client:
        assert run_of(post_event(client, "quiz.completed", "warmup", {"score": 80}))
        redis_server.stop()

        def quiz(i):
            return post_event(client, "quiz.completed", f"outage-{i}", {"score": 80}, wait=None)

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(quiz, range(200)))
        assert [r.status_code for r in responses] == [202] * 200
        assert Event.objects.filter(state="pending").count() == 200

        redis_server.start()
        wait_until(lambda: Event.objects.filter(state="done").count() == 201, timeout=120)
    assert ChainRun.objects.count() == 201
    assert Grant.objects.filter(benefit__code="chance").count() == 201


def grant_chances(activity, external_ids):
    chance = activity.benefits.get(code="chance")
    Grant.objects.bulk_create(
        Grant(
            benefit=chance,
            activity=activity,
            customer=CustomerFactory(external_id=external_id),
            idempotency_key=f"seed:{external_id}",
            quantity=1,
            remaining=1,
        )
        for external_id in external_ids
    )

"""Coupons: codes (generated and pooled), validity in the activity's zone, redemption and
release over the API, orders driving them, and the expiry sweep."""

import datetime as dt
import threading
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django_fsm_log.models import StateLog

from activities.engine.cache import coupon_spec
from activities.models import CodeSource, CouponCode, Grant, GrantState
from activities.services import coupon_codes, coupon_expiry, redemptions
from activities.services.events import accept_event, process_event
from segments.services.orders import transition_order, upsert_order
from tests.factories import (
    ActivityFactory,
    BenefitFactory,
    ChainFactory,
    ChannelFactory,
    CustomerFactory,
    StepFactory,
    TemplateFactory,
    make_api_key,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def coupon_activity(*, stock=None, **benefit_fields):
    template = TemplateFactory()
    chain = ChainFactory(template=template, channel=ChannelFactory(code="coupon.claim"))
    StepFactory(chain=chain, position=0, processor="grant_benefit", config={"benefit": "c10"})
    activity = ActivityFactory(template=template, running=True, timezone="Asia/Shanghai")
    benefit = BenefitFactory(
        activity=activity, code="c10", kind="coupon", value="10.00", stock_total=stock,
        **benefit_fields,
    )  # fmt: skip
    return activity, benefit


def claim(customer: str, key: str) -> Grant:
    event, _ = accept_event(
        client=make_api_key()[0],
        idempotency_key=key,
        channel_code="coupon.claim",
        customer_external_id=customer,
        payload={},
    )
    process_event(event_id=event.pk)
    return Grant.objects.get(run__event=event)


def issued_coupon(*, customer=None, valid_until=None, code="SPRING-ABCDEFGH", **fields) -> Grant:
    activity, benefit = coupon_activity()
    return Grant.objects.create(
        benefit=benefit,
        activity=activity,
        customer=customer or CustomerFactory(external_id="alice"),
        idempotency_key=f"test:{code}",
        value=Decimal("10.00"),
        code=code,
        valid_until=valid_until,
        **fields,
    )


# --- codes -------------------------------------------------------------------------------------


def test_generated_codes_use_the_prefix_and_no_look_alike_characters():
    codes = {coupon_codes.generate_code(prefix="SPRING-", length=12) for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert code.startswith("SPRING-") and len(code) == 19
        assert not set(code[7:]) & set("01ILO")
        assert set(code[7:]) <= set(coupon_codes.ALPHABET)


def test_a_batch_of_generated_codes_is_distinct_and_uses_every_character():
    spec = coupon_spec(BenefitFactory.build(kind="coupon", code_prefix="B-", code_length=8))
    codes = coupon_codes.generate_codes(spec=spec, count=200_000)
    assert len(codes) == len(set(codes)) == 200_000
    characters = Counter("".join(code[2:] for code in codes))
    assert set(characters) == set(coupon_codes.ALPHABET)
    # 1.6M characters over 31 symbols: each within 3% of its share.
    share = 200_000 * 8 / len(coupon_codes.ALPHABET)
    assert all(abs(n - share) < share * 0.03 for n in characters.values())


@pytest.mark.django_db
def test_a_chain_grants_a_coupon_with_a_unique_code_and_local_midnight_validity():
    coupon_activity(code_prefix="VIP-", valid_days=2)
    first = claim("alice", "k1")
    second = claim("bob", "k2")
    assert first.code.startswith("VIP-") and len(first.code) == 16
    assert first.code != second.code
    local_end = first.valid_until.astimezone(SHANGHAI)
    issue_day = first.created_at.astimezone(SHANGHAI).date()
    assert (local_end.date(), local_end.time()) == (issue_day + dt.timedelta(days=2), dt.time(0))


def test_validity_counts_days_in_the_activity_zone_and_the_earlier_end_wins():
    benefit = BenefitFactory.build(kind="coupon", valid_days=1)
    spec = coupon_spec(benefit)
    # 23:30 on Dec 4 in Shanghai is 15:30 UTC: one day ends at midnight Shanghai, Dec 5.
    issued = dt.datetime(2026, 12, 4, 15, 30, tzinfo=dt.UTC)
    assert coupon_codes.validity(spec=spec, timezone_name="Asia/Shanghai", issued_at=issued) == (
        None,
        dt.datetime(2026, 12, 5, tzinfo=SHANGHAI),
    )
    # The same instant is still Dec 4 morning in New York.
    _, until = coupon_codes.validity(spec=spec, timezone_name="America/New_York", issued_at=issued)
    assert until == dt.datetime(2026, 12, 5, tzinfo=ZoneInfo("America/New_York"))
    fixed = dt.datetime(2026, 12, 4, 15, 45, tzinfo=dt.UTC)
    benefit.valid_until = fixed
    assert coupon_codes.validity(
        spec=coupon_spec(benefit), timezone_name="Asia/Shanghai", issued_at=issued
    ) == (None, fixed)


@pytest.mark.django_db
def test_a_pool_upload_counts_new_codes_as_stock_and_reports_bad_lines():
    _, benefit = coupon_activity(code_source=CodeSource.POOL)
    data = b"code\nAAAA-1111\nbbbb-2222\nAAAA-1111\nx\n\nCCCC-3333,extra\n"
    result = coupon_codes.upload_pool(benefit=benefit, data=data)
    assert (result.added, result.duplicates, result.rejected) == (3, 1, [(5, "X")])
    benefit.refresh_from_db()
    assert (benefit.stock_total, benefit.stock_remaining) == (3, 3)
    again = coupon_codes.upload_pool(benefit=benefit, data=b"CCCC-3333\nDDDD-4444\n")
    assert (again.added, again.duplicates) == (1, 1)
    benefit.refresh_from_db()
    assert benefit.stock_remaining == 4


@pytest.mark.django_db
def test_a_chain_draws_pool_codes_until_the_pool_is_empty():
    _, benefit = coupon_activity(code_source=CodeSource.POOL)
    coupon_codes.upload_pool(benefit=benefit, data=b"POOL-0001\nPOOL-0002\n")
    codes = {claim(f"c{i}", f"k{i}").code for i in range(2)}
    assert codes == {"POOL-0001", "POOL-0002"}
    with pytest.raises(Grant.DoesNotExist):
        claim("c3", "k3")
    benefit.refresh_from_db()
    assert benefit.stock_remaining == 0
    assert CouponCode.objects.filter(issued=False).count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_pool_claims_never_hand_out_a_code_twice():
    _, benefit = coupon_activity(code_source=CodeSource.POOL)
    coupon_codes.upload_pool(
        benefit=benefit, data="\n".join(f"POOL-{i:05d}" for i in range(300)).encode()
    )
    claimed: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def claimer() -> None:
        try:
            barrier.wait()
            for _ in range(50):
                with transaction.atomic():
                    got = coupon_codes.claim_pool_codes(benefit_id=benefit.pk, count=1)
                with lock:
                    claimed.extend(got)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 300 and len(set(claimed)) == 300
    assert not CouponCode.objects.filter(issued=False).exists()


# --- redemption over the API -------------------------------------------------------------------


def redeem(api, code, key, customer="alice", order="o-1"):
    return api.post(
        f"/api/v1/coupons/{code}/redeem/",
        {"customer": customer, "order": order},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


@pytest.mark.django_db
def test_redeem_answers_the_value_and_the_same_key_gets_the_same_answer(api):
    grant = issued_coupon()
    first = redeem(api, "spring-abcdefgh", "r1")
    assert first.status_code == 200
    assert (first.json()["value"], first.json()["state"], first.json()["order"]) == (
        "10.00",
        "redeemed",
        "o-1",
    )
    assert redeem(api, "SPRING-ABCDEFGH", "r1").json() == first.json()
    other = redeem(api, "SPRING-ABCDEFGH", "r2")
    assert (other.status_code, other.json()["code"]) == (409, "coupon_already_redeemed")
    reused = redeem(api, "SPRING-ABCDEFGH", "r1", order="o-2")
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    grant.refresh_from_db()
    assert (grant.state, grant.order) == (GrantState.REDEEMED, "o-1")
    assert list(StateLog.objects.for_(grant).values_list("transition", flat=True)) == ["redeem"]


@pytest.mark.django_db
def test_redeem_refuses_with_stable_codes(api, api_key):
    customer = CustomerFactory(external_id="alice")
    now = dt.datetime.now(dt.UTC)
    issued_coupon(customer=customer, code="PAST-0001", valid_until=now - dt.timedelta(seconds=1))
    issued_coupon(customer=customer, code="LATER-0001", valid_from=now + dt.timedelta(days=1))
    revoked = issued_coupon(customer=customer, code="GONE-0001")
    revoked.revoke()
    revoked.save()
    issued_coupon(customer=CustomerFactory(external_id="bob"), code="BOB-0001")
    for code, expected in [
        ("PAST-0001", "coupon_expired"),
        ("LATER-0001", "coupon_not_yet_valid"),
        ("GONE-0001", "coupon_revoked"),
        ("BOB-0001", "coupon_not_yours"),
    ]:
        response = redeem(api, code, f"key-{code}")
        assert (response.status_code, response.json()["code"]) == (409, expected)
    missing = redeem(api, "NOPE-0001", "key-missing")
    assert (missing.status_code, missing.json()["code"]) == (404, "coupon_not_found")
    assert Grant.objects.get(code="PAST-0001").state == GrantState.EXPIRED
    no_key = api.post("/api/v1/coupons/BOB-0001/redeem/", {"customer": "bob", "order": "o"})
    assert no_key.json()["code"] == "idempotency_key_missing"


@pytest.mark.django_db
def test_the_coupon_endpoints_need_the_coupons_scope(client):
    issued_coupon()
    _, raw = make_api_key(scopes=["events"])
    response = client.post(
        "/api/v1/coupons/SPRING-ABCDEFGH/redeem/",
        {"customer": "alice", "order": "o"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {raw}",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert response.status_code == 403
    listing = client.get("/api/v1/customers/alice/coupons/", HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert listing.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_hundred_concurrent_redemptions_of_one_code_let_exactly_one_through():
    issued_coupon()
    key = make_api_key()[0]
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def redeemer(worker: int) -> None:
        try:
            barrier.wait()
            for attempt in range(5):
                answer = redemptions.redeem_coupon(
                    code="SPRING-ABCDEFGH",
                    customer="alice",
                    order=f"o-{worker}-{attempt}",
                    client_id=key.pk,
                    idempotency_key=f"k-{worker}-{attempt}",
                )
                with lock:
                    statuses.append(answer.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=redeemer, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [409] * 99
    assert StateLog.objects.filter(transition="redeem").count() == 1


@pytest.mark.django_db
def test_release_makes_it_usable_again_while_valid_and_expired_after(api):
    now = dt.datetime.now(dt.UTC)
    grant = issued_coupon(valid_until=now + dt.timedelta(hours=1))
    assert redeem(api, grant.code, "r1").status_code == 200
    wrong = api.post(f"/api/v1/coupons/{grant.code}/release/", {"order": "o-9"}, format="json")
    assert (wrong.status_code, wrong.json()["code"]) == (409, "coupon_order_mismatch")
    released = api.post(f"/api/v1/coupons/{grant.code}/release/", {"order": "o-1"}, format="json")
    assert (released.status_code, released.json()["state"]) == (200, "issued")
    again = api.post(f"/api/v1/coupons/{grant.code}/release/", {"order": "o-1"}, format="json")
    assert (again.status_code, again.json()["state"]) == (200, "issued")
    assert redeem(api, grant.code, "r2", order="o-2").status_code == 200
    # The order is cancelled after the coupon's end (in Shanghai midnight terms): it expires.
    answer = redemptions.release_coupon(
        code=grant.code, order="o-2", client_id=None, now=now + dt.timedelta(hours=2)
    )
    assert (answer.status, answer.body["state"]) == (200, "expired")
    grant.refresh_from_db()
    assert grant.state == GrantState.EXPIRED
    assert list(
        StateLog.objects.for_(grant).order_by("pk").values_list("transition", flat=True)
    ) == ["redeem", "release", "redeem", "release", "expire"]


@pytest.mark.django_db
def test_customer_coupons_lists_by_state(api):
    now = dt.datetime.now(dt.UTC)
    customer = CustomerFactory(external_id="alice")
    issued_coupon(customer=customer, code="USE-0001", valid_until=now + dt.timedelta(days=1))
    issued_coupon(customer=customer, code="OLD-0001", valid_until=now - dt.timedelta(days=1))
    used = issued_coupon(customer=customer, code="USED-0001")
    used.redeem(order="o")
    used.save()

    def codes(state):
        body = api.get(f"/api/v1/customers/alice/coupons/?state={state}").json()
        return [row["code"] for row in body["results"]]

    assert codes("usable") == ["USE-0001"]
    assert codes("redeemed") == ["USED-0001"]
    assert codes("expired") == ["OLD-0001"]
    row = api.get("/api/v1/customers/alice/coupons/?state=usable").json()["results"][0]
    assert set(row) == {
        "code", "value", "benefit", "activity", "valid_from", "valid_until", "state", "order"
    }  # fmt: skip


# --- orders drive coupons ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_paid_order_redeems_the_coupon_it_names_and_a_cancel_releases_it():
    customer = CustomerFactory(external_id="alice")
    grant = issued_coupon(customer=customer)
    upsert_order(
        external_id="o-1",
        customer_external_id="alice",
        amount=Decimal("99.00"),
        currency="CNY",
        placed_at=dt.datetime.now(dt.UTC),
        attributes={"coupon": "spring-abcdefgh"},
    )
    transition_order(external_id="o-1", transition="pay")
    grant.refresh_from_db()
    assert (grant.state, grant.order) == (GrantState.REDEEMED, "o-1")
    transition_order(external_id="o-1", transition="cancel")
    grant.refresh_from_db()
    assert (grant.state, grant.order) == (GrantState.ISSUED, "")


@pytest.mark.django_db
def test_orders_leave_coupons_alone_when_the_activity_says_so():
    customer = CustomerFactory(external_id="alice")
    grant = issued_coupon(customer=customer)
    grant.activity.coupons_follow_orders = False
    grant.activity.save()
    upsert_order(
        external_id="o-1",
        customer_external_id="alice",
        amount=Decimal("99.00"),
        currency="CNY",
        placed_at=dt.datetime.now(dt.UTC),
        attributes={"coupons": ["SPRING-ABCDEFGH", "UNKNOWN-1"]},
    )
    transition_order(external_id="o-1", transition="pay")
    grant.refresh_from_db()
    assert grant.state == GrantState.ISSUED


# --- expiry --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_expiry_runs_in_batches_at_the_local_midnight_and_logs_each_coupon():
    midnight = dt.datetime(2026, 12, 5, tzinfo=SHANGHAI)
    activity, benefit = coupon_activity()
    customer = CustomerFactory()
    for i in range(7):
        Grant.objects.create(
            benefit=benefit, activity=activity, customer=customer, idempotency_key=f"e{i}",
            code=f"EXP-{i:04d}", valid_until=midnight,
        )  # fmt: skip
    keep = Grant.objects.create(
        benefit=benefit, activity=activity, customer=customer, idempotency_key="keep",
        code="KEEP-0001", valid_until=midnight + dt.timedelta(days=1),
    )  # fmt: skip
    before = midnight - dt.timedelta(seconds=1)
    assert coupon_expiry.expire_due_coupons(now=before, batch=3) == 0
    assert coupon_expiry.expire_due_coupons(now=midnight, batch=3) == 7
    assert Grant.objects.filter(state=GrantState.EXPIRED).count() == 7
    keep.refresh_from_db()
    assert keep.state == GrantState.ISSUED
    logs = StateLog.objects.filter(transition="expire")
    assert logs.count() == 7
    assert set(logs.values_list("source_state", "state")) == {("issued", "expired")}

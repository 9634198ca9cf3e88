"""Coupons in the back-office: an operator requests an issue to a segment, sees what it takes,
an approver approves it, progress is live; pool upload; CSV exports; the activity's figures."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from activities.models import BenefitIssue, CodeSource, Grant, IssueState
from activities.services import approvals, coupon_issue, redemptions
from tests.e2e.scenario import role_user
from tests.factories import ActivityFactory, BenefitFactory, CustomerFactory
from tests.notifications.factories import make_customers, make_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def benefit():
    activity = ActivityFactory(running=True, name="Spring")
    benefit = BenefitFactory(
        activity=activity, code="gift", name="Gift", kind="coupon", stock_total=3, value="5.00"
    )
    approvals.record_approval(activity=activity, bypass="test")
    return benefit


def test_operator_requests_and_an_approver_approves_with_live_progress(client, benefit):
    segment = make_segment(make_customers(5))
    client.force_login(role_user("Operator", "olga"))
    add = reverse("admin:activities_benefitissue_add")
    assert client.get(add).status_code == 200
    response = client.post(add, {"benefit": benefit.pk, "segment": segment.pk})
    issue = BenefitIssue.objects.get()
    assert response.status_code == 302
    assert (issue.state, issue.audience, issue.requested_by.username) == ("requested", 5, "olga")
    change = client.get(reverse("admin:activities_benefitissue_change", args=[issue.pk]))
    page = change.content.decode()
    assert "5 customers in the segment now." in page
    assert "At most 3 will get one." in page
    assert 'data-action="approve"' not in page  # four eyes: not for the requester

    client.force_login(role_user("Approver", "abe"))
    approve = reverse("admin:activities_benefitissue_transition", args=[issue.pk, "approve"])
    assert client.post(approve, {"confirmed": "yes"}).status_code == 302
    issue.refresh_from_db()
    assert (issue.state, issue.approved_by.username) == (IssueState.APPROVED, "abe")
    coupon_issue.run_issue(issue_id=issue.pk)
    progress = client.get(reverse("admin:activities_benefitissue_progress", args=[issue.pk]))
    assert progress.json() == {
        "state": "completed",
        "state_label": "completed",
        "issued": 3,
        "skipped": 2,
        "audience": 5,
        "text": "3 issued, 2 not issued of 5",
    }


def test_the_form_says_why_an_unapproved_activity_cannot_issue(client, benefit):
    benefit.value = Decimal("6.00")
    benefit.save()
    client.force_login(role_user("Operator", "olga"))
    segment = make_segment(make_customers(1))
    response = client.post(
        reverse("admin:activities_benefitissue_add"), {"benefit": benefit.pk, "segment": segment.pk}
    )
    assert response.status_code == 200
    assert (
        "changed after it was approved" in response.context["adminform"].form.errors["benefit"][0]
    )
    assert not BenefitIssue.objects.exists()


def test_pool_codes_are_uploaded_from_the_admin(client):
    activity = ActivityFactory(running=True)
    pool = BenefitFactory(activity=activity, kind="coupon", code_source=CodeSource.POOL)
    client.force_login(role_user(None))
    url = reverse("admin:activities_benefit_pool_upload")
    upload = SimpleUploadedFile("codes.csv", b"code\nAB-0001\nAB-0002\n!!\n")
    response = client.post(url, {"benefit": pool.pk, "file": upload})
    assert response.status_code == 200
    assert response.context["rejected"] == [(4, "!!")]
    pool.refresh_from_db()
    assert pool.stock_remaining == 2


def test_grants_and_redemptions_export_as_formula_safe_csv(client, benefit):
    customer = CustomerFactory(external_id="=cmd|calc")
    grant = Grant.objects.create(
        benefit=benefit,
        activity=benefit.activity,
        customer=customer,
        idempotency_key="x",
        code="EXP-0001",
        value=Decimal("5.00"),
    )
    redemptions.redeem_coupon(
        code="EXP-0001", customer="=cmd|calc", order="+o1", client_id=None, idempotency_key="k"
    )
    client.force_login(role_user(None))
    changelist = reverse("admin:activities_grant_changelist")
    response = client.post(
        changelist, {"action": "export_grants_csv", "_selected_action": [grant.pk]}
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["code", "state", "activity", "benefit", "customer"]
    assert rows[1][:5] == ["EXP-0001", "redeemed", benefit.activity.code, "gift", "'=cmd|calc"]
    assert rows[1][8] == "'+o1"
    response = client.post(
        changelist, {"action": "export_redemptions_csv", "_selected_action": [grant.pk]}
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][1:] == ["redeem", "EXP-0001", "'=cmd|calc", "'+o1", "200", "redeemed"]


def test_the_activity_figures_count_coupons_by_state(client, benefit):
    customer = CustomerFactory()
    for index, state in enumerate(["issued", "redeemed", "redeemed", "expired"]):
        grant = Grant.objects.create(
            benefit=benefit,
            activity=benefit.activity,
            customer=customer,
            idempotency_key=f"k{index}",
            code=f"FIG-{index:04d}",
        )
        Grant.objects.filter(pk=grant.pk).update(state=state)
    client.force_login(role_user(None))
    response = client.get(reverse("admin:activities_activity_figures", args=[benefit.activity.pk]))
    coupons = response.context["figures"]["coupons"]
    assert coupons == {
        "issued": 4,
        "usable": 1,
        "redeemed": 2,
        "expired": 1,
        "revoked": 0,
        "redemption_rate": 0.5,
    }
    assert 'data-figure="coupons-rate">50%' in response.content.decode()


def test_a_grants_validity_shows_in_the_activitys_zone(client):
    activity = ActivityFactory(timezone="Asia/Shanghai")
    gift = BenefitFactory(activity=activity, code="gift", kind="coupon")
    grant = Grant.objects.create(
        activity=activity,
        benefit=gift,
        customer=CustomerFactory(),
        quantity=1,
        remaining=1,
        idempotency_key="zone-shown",
        code="ZONE-1",
        valid_until=dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC),
    )
    client.force_login(role_user("Viewer", "vera"))
    body = client.get(reverse("admin:activities_grant_change", args=[grant.pk])).content.decode()
    assert "2027-01-01 00:00 CST (Asia/Shanghai) = 2026-12-31 16:00 UTC" in body

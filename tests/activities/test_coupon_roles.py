"""The back-office roles and coupons: operators prepare issues and upload pools, approvers
approve them, viewers only read; every refused action changes nothing."""

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from activities.models import BenefitIssue, CodeSource, CouponCode, IssueState
from activities.services import approvals, coupon_issue
from tests.e2e.scenario import role_user
from tests.factories import ActivityFactory, BenefitFactory
from tests.notifications.factories import make_customers, make_segment

pytestmark = pytest.mark.django_db


def login(role: str) -> Client:
    client = Client()
    client.force_login(role_user(role))
    return client


@pytest.fixture
def benefit():
    activity = ActivityFactory(running=True, timezone="Asia/Shanghai")
    benefit = BenefitFactory(
        activity=activity, code="gift", kind="coupon", code_source=CodeSource.POOL
    )
    approvals.record_approval(activity=activity, bypass="test")
    return benefit


@pytest.fixture
def segment():
    return make_segment(make_customers(3))


def requested(benefit, segment) -> BenefitIssue:
    return coupon_issue.request_issue(benefit=benefit, segment=segment)


def transition(client: Client, issue: BenefitIssue, name: str):
    return client.post(
        reverse("admin:activities_benefitissue_transition", args=[issue.pk, name]),
        {"confirmed": "yes"},
    )


def upload(client: Client, benefit):
    return client.post(
        reverse("admin:activities_benefit_pool_upload"),
        {"benefit": benefit.pk, "file": SimpleUploadedFile("codes.csv", b"code\nPOOL-AAAA-0001\n")},
    )


def codenames(role: str) -> set[str]:
    return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))


def test_operator_prepares_an_issue_and_uploads_a_pool_but_cannot_approve(benefit, segment):
    client = login("Operator")
    response = client.post(
        reverse("admin:activities_benefitissue_add"),
        {"benefit": benefit.pk, "segment": segment.pk},
    )
    assert response.status_code == 302
    issue = BenefitIssue.objects.get()
    assert (issue.state, issue.requested_by.username) == (IssueState.REQUESTED, "operator")
    assert upload(client, benefit).status_code == 302
    assert list(CouponCode.objects.values_list("code", flat=True)) == ["POOL-AAAA-0001"]
    transition(client, issue, "approve")
    issue.refresh_from_db()
    assert issue.state == IssueState.REQUESTED


def test_approver_approves_but_neither_prepares_nor_uploads(benefit, segment):
    issue = requested(benefit, segment)
    client = login("Approver")
    assert client.get(reverse("admin:activities_benefitissue_add")).status_code == 403
    assert upload(client, benefit).status_code == 403
    assert not CouponCode.objects.exists()
    assert transition(client, issue, "approve").status_code == 302
    issue.refresh_from_db()
    assert (issue.state, issue.approved_by.username) == (IssueState.APPROVED, "approver")


def test_viewer_reads_issues_and_changes_nothing(benefit, segment):
    issue = requested(benefit, segment)
    client = login("Viewer")
    assert client.get(reverse("admin:activities_benefitissue_changelist")).status_code == 200
    change = reverse("admin:activities_benefitissue_change", args=[issue.pk])
    assert client.get(change).status_code == 200
    assert client.get(reverse("admin:activities_benefitissue_add")).status_code == 403
    assert upload(client, benefit).status_code == 403
    transition(client, issue, "approve")
    transition(client, issue, "cancel")
    issue.refresh_from_db()
    assert issue.state == IssueState.REQUESTED
    assert not CouponCode.objects.exists()


def test_an_approver_may_call_off_a_requested_issue(benefit, segment):
    issue = requested(benefit, segment)
    transition(login("Approver"), issue, "cancel")
    issue.refresh_from_db()
    assert issue.state == IssueState.CANCELLED


def test_the_roles_hold_exactly_their_coupon_permissions():
    role_user("Viewer")
    coupon_models = ("benefitissue", "couponcode", "couponredemption", "issueskip")
    coupon = {
        role: {
            name
            for name in codenames(role)
            if name.endswith(coupon_models) or name in {"revoke_grant", "change_benefit"}
        }
        for role in ("Operator", "Approver", "Viewer")
    }
    views = {f"view_{model}" for model in coupon_models}
    assert coupon["Viewer"] == views
    assert coupon["Operator"] == views | {
        "add_benefitissue",
        "change_benefitissue",
        "delete_benefitissue",
        "change_benefit",
    }
    assert coupon["Approver"] == views | {"approve_benefitissue", "revoke_grant"}

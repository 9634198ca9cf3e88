"""Revoking a grant: the service, its permission, and the admin button behind a confirmation."""

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from activities.models import Grant
from activities.services.grants import revoke_grant
from core.errors import TransitionNotAllowed
from tests.factories import CustomerFactory, build_quiz_lottery

pytestmark = pytest.mark.django_db


@pytest.fixture
def grant():
    activity = build_quiz_lottery()
    return Grant.objects.create(
        benefit=activity.benefits.get(code="coupon-5"),
        activity=activity,
        customer=CustomerFactory(),
        idempotency_key="g1",
        quantity=1,
        remaining=1,
    )


def staff(*permissions):
    user = User.objects.create_user("op", password="pw", is_staff=True)
    for codename in ("view_grant", *permissions):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=user.pk)


def test_revoke_needs_the_permission(grant):
    with pytest.raises(PermissionDenied):
        revoke_grant(grant=grant, by=staff())
    grant.refresh_from_db()
    assert grant.state == "issued"


def test_revoke_keeps_the_stock_spent_and_logs_who(grant):
    stock_before = grant.benefit.stock_remaining
    user = staff("revoke_grant")
    revoked = revoke_grant(grant=grant, by=user, reason="fraud")
    assert (revoked.state, revoked.remaining) == ("revoked", 0)
    grant.benefit.refresh_from_db()
    assert grant.benefit.stock_remaining == stock_before
    from django_fsm_log.models import StateLog

    log = StateLog.objects.for_(revoked).get()
    assert (log.transition, log.by, log.description) == ("revoke", user, "fraud")
    with pytest.raises(TransitionNotAllowed):
        revoke_grant(grant=revoked, by=user)


def test_admin_revoke_button_confirms_first(client, grant):
    client.force_login(staff("revoke_grant"))
    change = client.get(reverse("admin:activities_grant_change", args=[grant.pk]))
    url = reverse("admin:activities_grant_transition", args=[grant.pk, "revoke"])
    assert url.encode() in change.content
    assert client.get(url).status_code == 200  # the confirmation page
    grant.refresh_from_db()
    assert grant.state == "issued"
    client.post(url, {"confirmed": "yes", "reason": "duplicate account"})
    grant.refresh_from_db()
    assert grant.state == "revoked"

"""One test per role and permission: every forbidden action is refused, and nothing changes."""

import re

import pytest
import reversion
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from activities.models import Activity, ActivityState, Chain
from activities.services import approvals as approval
from tests.e2e.scenario import activity_on, quiz_template, role_user

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def edited_by(activity: Activity, user) -> None:
    """What the admin records for an edit: a revision with its user."""
    with reversion.create_revision():
        reversion.set_user(user)
        reversion.add_to_revision(activity)


def transition(client: Client, activity: Activity, name: str):
    return client.post(
        reverse("admin:activities_activity_transition", args=[activity.pk, name]),
        {"confirmed": "yes", "reason": "test"},
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def activity():
    return activity_on(quiz_template())


@pytest.fixture
def change_post(activity):
    return {
        "name": "changed",
        "template": activity.template_id,
        "timezone": "Asia/Shanghai",
        "on_exhausted": "pause",
        "benefits-TOTAL_FORMS": "0",
        "benefits-INITIAL_FORMS": "0",
    }


# --- Viewer: reads everything, changes nothing ---------------------------------------------------


def test_viewer_sees_but_cannot_edit_an_activity(activity, change_post):
    client = login(role_user("Viewer"))
    url = reverse("admin:activities_activity_change", args=[activity.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, change_post).status_code == 403
    activity.refresh_from_db()
    assert activity.name == "Spring quiz"


def test_viewer_cannot_add_an_activity(activity):
    client = login(role_user("Viewer"))
    assert client.get(reverse("admin:activities_activity_add")).status_code == 403


def test_viewer_cannot_submit_dry_run_or_edit_chains(activity):
    client = login(role_user("Viewer"))
    assert (
        client.post(reverse("admin:activities_activity_submit", args=[activity.pk])).status_code
        == 403
    )
    assert (
        client.get(reverse("admin:activities_activity_dry_run", args=[activity.pk])).status_code
        == 403
    )
    chain = Chain.objects.get(template=activity.template)
    url = reverse("admin:activities_chain_change", args=[chain.pk])
    assert client.post(url, {"channel": chain.channel_id}).status_code == 403
    assert approval.approval_status(activity).status == "editing"


def test_viewer_cannot_schedule(activity):
    client = login(role_user("Viewer"))
    response = transition(client, activity, "schedule")
    assert response.status_code == 302
    activity.refresh_from_db()
    assert activity.state == ActivityState.DRAFT


def test_viewer_sees_no_action_buttons(activity):
    client = login(role_user("Viewer"))
    body = client.get(
        reverse("admin:activities_activity_change", args=[activity.pk])
    ).content.decode()
    # Only the read-only links (figures, the document export); no button that changes anything.
    assert set(re.findall(r'data-action="([^"]+)"', body)) == {"figures", "export"}


# --- Operator: edits drafts, submits; no lifecycle ------------------------------------------------


def test_operator_cannot_schedule(activity):
    operator = role_user("Operator")
    client = login(operator)
    response = transition(client, activity, "schedule")
    assert "This action is not allowed for this record now." in messages_of(response)
    activity.refresh_from_db()
    assert activity.state == ActivityState.DRAFT


def test_operator_cannot_approve(activity):
    client = login(role_user("Operator"))
    approval.submit_for_approval(activity=activity, user=role_user(None, "someone"))
    response = client.post(reverse("admin:activities_activity_approve", args=[activity.pk]))
    assert response.status_code == 403
    assert approval.approval_status(activity).status == "submitted"


def test_operator_cannot_edit_a_running_activity(activity, change_post):
    Activity.objects.filter(pk=activity.pk).update(state=ActivityState.RUNNING)
    client = login(role_user("Operator"))
    url = reverse("admin:activities_activity_change", args=[activity.pk])
    assert client.post(url, change_post).status_code == 403


def test_operator_cannot_pause_or_end(activity):
    Activity.objects.filter(pk=activity.pk).update(state=ActivityState.RUNNING)
    client = login(role_user("Operator"))
    for name in ("pause", "end"):
        transition(client, activity, name)
        activity.refresh_from_db()
        assert activity.state == ActivityState.RUNNING


def test_operator_submits_a_draft(activity):
    operator = role_user("Operator")
    client = login(operator)
    client.post(reverse("admin:activities_activity_submit", args=[activity.pk]))
    status = approval.approval_status(activity)
    assert (status.status, status.submitted_by_id) == ("submitted", operator.pk)


# --- Approver: approves others' work, runs the lifecycle; never edits ---------------------------


def test_approver_cannot_edit(activity, change_post):
    client = login(role_user("Approver"))
    url = reverse("admin:activities_activity_change", args=[activity.pk])
    assert client.post(url, change_post).status_code == 403


def test_approver_cannot_approve_their_own_edit(activity):
    """Four eyes: someone with both roles edits and submits, then cannot approve."""
    user = role_user("Operator", "both")
    user.groups.add(*role_user("Approver").groups.all())
    edited_by(activity, user)
    approval.submit_for_approval(activity=activity, user=user)
    response = login(user).post(reverse("admin:activities_activity_approve", args=[activity.pk]))
    assert any("Four eyes" in m for m in messages_of(response))
    assert approval.approval_status(activity).status == "submitted"


def test_approver_cannot_approve_an_unsubmitted_activity(activity):
    edited_by(activity, role_user("Operator"))
    response = login(role_user("Approver")).post(
        reverse("admin:activities_activity_approve", args=[activity.pk])
    )
    assert any("submitted" in m for m in messages_of(response))
    assert approval.approval_status(activity).status == "editing"


def test_approver_cannot_schedule_without_approval(activity):
    edited_by(activity, role_user("Operator"))
    response = transition(login(role_user("Approver")), activity, "schedule")
    assert response.status_code == 302
    activity.refresh_from_db()
    assert activity.state == ActivityState.DRAFT


def test_an_edit_after_approval_needs_a_new_approval(activity):
    operator, approver = role_user("Operator"), role_user("Approver")
    edited_by(activity, operator)
    approval.submit_for_approval(activity=activity, user=operator)
    approval.approve(activity=activity, user=approver)
    edited_by(activity, operator)
    transition(login(approver), activity, "schedule")
    activity.refresh_from_db()
    assert activity.state == ActivityState.DRAFT


def test_approver_approves_and_schedules_someone_elses_activity(activity):
    operator, approver = role_user("Operator"), role_user("Approver")
    edited_by(activity, operator)
    login(operator).post(reverse("admin:activities_activity_submit", args=[activity.pk]))
    client = login(approver)
    client.post(reverse("admin:activities_activity_approve", args=[activity.pk]))
    response = transition(client, activity, "schedule")
    assert f"Activity {activity.code} is scheduled." in messages_of(response)
    activity.refresh_from_db()
    assert activity.state == ActivityState.SCHEDULED


def test_end_asks_for_confirmation_first(activity):
    Activity.objects.filter(pk=activity.pk).update(state=ActivityState.RUNNING)
    client = login(role_user("Approver"))
    url = reverse("admin:activities_activity_transition", args=[activity.pk, "end"])
    page = client.get(url)
    assert page.status_code == 200
    assert "Are you sure?" in page.content.decode()
    client.post(url, {"reason": "no confirmation"})  # the form without its confirmation
    activity.refresh_from_db()
    assert activity.state == ActivityState.RUNNING
    client.post(url, {"confirmed": "yes", "reason": "done"})
    activity.refresh_from_db()
    assert (activity.state, activity.state_reason) == (ActivityState.ENDED, "done")


def test_setup_roles_is_idempotent():
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("setup_roles", stdout=open("/dev/null", "w"))  # noqa: SIM115
    first = {
        g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()
    }
    call_command("setup_roles", stdout=open("/dev/null", "w"))  # noqa: SIM115
    again = {
        g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()
    }
    assert first == again
    assert "schedule_activity" in first["Approver"] and "change_activity" not in first["Approver"]
    assert "change_activity" in first["Operator"] and "schedule_activity" not in first["Operator"]
    assert all(code.startswith("view_") for code in first["Viewer"])

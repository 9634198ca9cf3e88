"""Four eyes cover everything an activity runs: any change after approval to its template's
chains or steps, its segment, a channel it listens to or a notification template it sends voids
the approval, and the lifecycle service (not only the admin) refuses to schedule or launch it."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from activities.models import Activity, ActivityApproval, ActivityState, ChainStep, Channel
from activities.services import approvals, lifecycle
from notifications.models import NotificationTemplate
from segments.models import Customer, SegmentMember
from tests.activities.lifecycle_factories import valid_draft
from tests.factories import StepFactory
from tests.notifications.factories import NotificationTemplateFactory
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db

CHANGED = (
    "This activity's configuration (its template, chains, benefits, segment, channels or "
    "notification templates) changed after it was approved; it needs a new approval."
)


@pytest.fixture
def activity(django_user_model):
    template = NotificationTemplateFactory(code="welcome")
    segment = SegmentFactory(kind="static", rule=None)
    SegmentMember.objects.create(segment=segment, customer=Customer.objects.create(external_id="a"))
    draft = valid_draft(segment=segment)
    StepFactory(
        chain=draft.template.chains.get(),
        position=1,
        processor="notify",
        config={"template": template.code},
    )
    approver = django_user_model.objects.create_user("approver")
    approvals.approve(activity=draft, user=approver)
    return draft


def change_step_config(activity):
    step = ChainStep.objects.get(chain__template=activity.template, processor="build_result")
    step.config = {"fields": {"extra": "event.score"}}
    step.save()


def add_webhook_step(activity):
    StepFactory(
        chain=activity.template.chains.get(),
        position=2,
        processor="call_webhook",
        config={"url": "https://example.com/hook"},
    )


def change_segment_rule(activity):
    activity.segment.rule = {"all": [{"field": "customer.level", "op": "eq", "value": "gold"}]}
    activity.segment.save()


def add_segment_member(activity):
    SegmentMember.objects.create(
        segment=activity.segment, customer=Customer.objects.create(external_id="b")
    )


def change_channel_schema(activity):
    Channel.objects.filter(code="order.paid").update(payload_schema={"type": "object"})


def change_notification_template(activity):
    NotificationTemplate.objects.filter(code="welcome").update(body="Buy now, {{ customer.name }}")


def add_split_variant_sending_another_template(activity):
    NotificationTemplateFactory(code="variant-b")
    StepFactory(
        chain=activity.template.chains.get(),
        position=3,
        processor="split",
        config={
            "variants": [
                {
                    "name": "b",
                    "steps": [{"processor": "notify", "config": {"template": "variant-b"}}],
                }
            ]
        },
    )


def test_a_template_sent_inside_a_split_variant_is_covered(activity):
    add_split_variant_sending_another_template(activity)
    approvals.approve(activity=activity, user=activity.approvals.first().approved_by)
    assert approvals.approval_problem(activity=activity) is None
    NotificationTemplate.objects.filter(code="variant-b").update(body="Changed again")
    assert approvals.approval_problem(activity=activity) == CHANGED


def change_template_name(activity):
    activity.template.name = "Another gameplay"
    activity.template.save()


@pytest.mark.parametrize(
    "change",
    [
        change_step_config,
        add_webhook_step,
        change_segment_rule,
        add_segment_member,
        change_channel_schema,
        change_notification_template,
        change_template_name,
    ],
)
def test_a_change_after_approval_is_refused_at_schedule(activity, change):
    assert approvals.approval_problem(activity=activity) is None
    change(activity)
    assert approvals.approval_problem(activity=activity) == CHANGED
    assert approvals.approval_status(activity).status == "editing"
    with pytest.raises(approvals.NotApproved, match="changed after it was approved"):
        lifecycle.schedule_activity(activity=activity)
    activity.refresh_from_db()
    assert activity.state == ActivityState.DRAFT


def test_an_unchanged_approved_activity_schedules(activity):
    lifecycle.schedule_activity(activity=activity)
    activity.refresh_from_db()
    assert activity.state == ActivityState.SCHEDULED


def test_moving_the_window_keeps_the_approval(activity):
    Activity.objects.filter(pk=activity.pk).update(ends_at=activity.ends_at + dt.timedelta(days=1))
    activity.refresh_from_db()
    assert approvals.approval_problem(activity=activity) is None


def test_a_change_while_scheduled_stops_the_launch_and_returns_it_to_draft(activity):
    lifecycle.schedule_activity(activity=activity)
    add_webhook_step(activity)
    Activity.objects.filter(pk=activity.pk).update(
        starts_at=timezone.now() - dt.timedelta(minutes=1)
    )
    assert lifecycle.launch_activity(activity_id=activity.pk) is False
    activity.refresh_from_db()
    assert (activity.state, activity.state_reason) == (ActivityState.DRAFT, CHANGED[:200])


def test_never_approved_is_refused():
    draft = valid_draft()
    with pytest.raises(approvals.NotApproved, match="has not been approved"):
        lifecycle.schedule_activity(activity=draft)


def test_import_launch_records_who_bypassed_review(tmp_path, capsys):
    document = tmp_path / "activity.yaml"
    document.write_text(
        "code: imported\nname: Imported\ntemplate: imported-template\ntimezone: UTC\n"
        f"starts_at: '{(timezone.now() - dt.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%S')}'\n"
        f"ends_at: '{(timezone.now() + dt.timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%S')}'\n"
        "benefits: []\nchains:\n  - channel: order.paid\n    steps:\n"
        "      - processor: build_result\n"
    )
    call_command("import_activity", str(document), "--launch")
    output = capsys.readouterr().out
    assert "Launched without four-eyes review; the bypass is recorded on the activity." in output
    approval = ActivityApproval.objects.get(activity__code="imported")
    assert approval.approved_by is None
    assert approval.bypass.startswith("import_activity --launch (")
    assert Activity.objects.get(code="imported").state == ActivityState.RUNNING

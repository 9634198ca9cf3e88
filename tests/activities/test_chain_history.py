"""A chain's history in the operator's terms: which step changed which setting from what to
what, steps added, removed and moved, conditions as text; revert from the diff."""

import json

import pytest
from django.urls import reverse
from reversion.models import Version

from activities.admin.chain_diff import condition_text, step_changes
from activities.models import Chain
from tests.activities.test_admin_pages import chain_post
from tests.e2e.scenario import activity_on, quiz_template, role_user

pytestmark = pytest.mark.django_db


def step(id_, processor, config=None, when=None):
    return {
        "id": id_,
        "processor": processor,
        "config": config or {},
        "when": when,
        "on_error": "abort",
    }


def test_a_changed_setting_names_the_step_and_the_values():
    old = [
        step(1, "rule_check", {"all": [{"field": "event.score", "op": "gte", "value": 60}]}),
        step(2, "grant_benefit", {"benefit": "chance", "quantity": 1}),
    ]
    new = [
        step(1, "rule_check", {"all": [{"field": "event.score", "op": "gte", "value": 50}]}),
        step(2, "grant_benefit", {"benefit": "chance", "quantity": 2}),
    ]
    assert step_changes(old, new) == [
        "step 1 (Rule check): condition from “event.score at least 60” to "
        "“event.score at least 50”.",
        "step 2 (Grant a benefit): quantity from 1 to 2.",
    ]


def test_added_removed_and_moved_steps_and_unchanged_ones_silent():
    old = [
        step(1, "rule_check", {"all": [{"field": "event.x", "op": "exists"}]}),
        step(2, "participation_limit", {"key": "q", "per": "day", "limit": 1}),
        step(3, "grant_benefit", {"benefit": "chance", "quantity": 1}),
        step(4, "build_result"),
    ]
    new = [old[0], old[2], old[1], step(5, "query_assets", {"benefits": ["chance"]})]
    assert step_changes(old, new) == [
        "Removed step 4 (Build the result).",
        "Moved step 3 (Participation limit) from position 2 to 3.",
        "Added step 4 (Query assets).",
    ]


def test_conditions_read_as_text():
    tree = {
        "any": [
            {"field": "event.day", "op": "between", "value": [1, 7]},
            {"not": {"field": "customer.level", "op": "eq", "value": "gold"}},
        ]
    }
    assert (
        condition_text(tree) == "event.day is between 1 and 7 or not (customer.level equals gold)"
    )


def test_the_compare_page_shows_the_changed_field_and_reverts(client):
    client.force_login(role_user(None))
    activity = activity_on(quiz_template())
    chain = Chain.objects.get(template=activity.template)
    steps = list(chain.steps.order_by("position"))
    url = reverse("admin:activities_chain_change", args=[chain.pk])
    rows = [(s, s.processor, s.config, i) for i, s in enumerate(steps)]
    assert client.post(url, chain_post(chain, rows)).status_code == 302
    rows[2] = (steps[2], "grant_benefit", {"benefit": "chance", "quantity": 2}, 2)
    assert client.post(url, chain_post(chain, rows)).status_code == 302
    first, second = Version.objects.get_for_object(chain).order_by("pk")
    page = client.get(
        reverse("admin:activities_chain_compare", args=[chain.pk]),
        {"version_id1": first.pk, "version_id2": second.pk},
    ).content.decode()
    assert "Step 3 (Grant a benefit): quantity from 1 to 2." in page
    assert "Step 1 (" not in page
    revert = reverse("admin:activities_chain_revision", args=[chain.pk, first.pk])
    assert revert in page


def test_segments_templates_and_broadcasts_keep_a_history(client):
    from notifications.models import Broadcast, NotificationTemplate
    from segments.models import Segment

    client.force_login(role_user(None))
    rule = {"field": "customer.level", "op": "eq", "value": "gold"}
    data = {"code": "gold", "name": "Gold", "description": "", "kind": "dynamic"}
    client.post(reverse("admin:segments_segment_add"), {**data, "rule": json.dumps(rule)})
    segment = Segment.objects.get(code="gold")
    changed = {**rule, "value": "silver"}
    url = reverse("admin:segments_segment_change", args=[segment.pk])
    assert client.post(url, {**data, "rule": json.dumps(changed)}).status_code == 302
    first, second = Version.objects.get_for_object(segment).order_by("pk")
    page = client.get(
        reverse("admin:segments_segment_compare", args=[segment.pk]),
        {"version_id1": first.pk, "version_id2": second.pk},
    ).content.decode()
    assert "customer.level equals" in page
    assert '"value"' not in page
    for model in (NotificationTemplate, Broadcast):
        meta = model._meta
        assert reverse(f"admin:{meta.app_label}_{meta.model_name}_compare", args=[1])

"""Every admin page renders; the chain builder, dry-run and history work in-process."""

import json

import pytest
from django.urls import reverse

from activities.models import Chain, ChainRun, Event, Grant, Participation
from activities.reason_labels import reason_label
from tests.e2e.scenario import activity_on, quiz_template, role_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):
    client.force_login(role_user(None))
    return client


@pytest.fixture
def activity():
    return activity_on(quiz_template())


def test_every_changelist_and_add_page_renders(admin_client_, activity):
    from django.contrib import admin

    for model in admin.site._registry:
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert admin_client_.get(url).status_code == 200, url
        # The activity's add page leads through the gameplay gallery.
        response = admin_client_.get(
            reverse(f"admin:{meta.app_label}_{meta.model_name}_add"), follow=True
        )
        assert response.status_code in (200, 403), url


def test_activity_change_page_shows_buttons_and_history(admin_client_, activity):
    response = admin_client_.get(reverse("admin:activities_activity_change", args=[activity.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-action="submit"' in body
    assert 'data-action="dry_run"' in body
    assert 'data-action="archive"' in body
    history = admin_client_.get(reverse("admin:activities_activity_history", args=[activity.pk]))
    assert history.status_code == 200


def test_chain_page_renders_builder(admin_client_, activity):
    chain = Chain.objects.get(template=activity.template)
    response = admin_client_.get(reverse("admin:activities_chain_change", args=[chain.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "gambit-chain-builder" in body
    assert body.count('data-builder="schema-form"') == 5  # four steps and the empty form
    assert "gambit/vendor/Sortable.min.js" in body


def chain_post(chain, steps):
    """The chain change form as the browser posts it: `steps` is [(step or None, processor,
    config, position)]."""
    data = {
        "channel": chain.channel_id,
        "requires_lock": "on",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": str(sum(1 for s in steps if s[0] is not None)),
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
    }
    for i, (step, processor, config, position) in enumerate(steps):
        data.update(
            {
                f"steps-{i}-id": step.pk if step else "",
                f"steps-{i}-chain": chain.pk,
                f"steps-{i}-position": position,
                f"steps-{i}-processor": processor,
                f"steps-{i}-config": json.dumps(config),
                f"steps-{i}-when": "",
                f"steps-{i}-on_error": "abort",
            }
        )
    return data


def test_chain_builder_shows_config_errors_on_the_field(admin_client_, activity):
    chain = Chain.objects.get(template=activity.template)
    steps = list(chain.steps.order_by("position"))
    version = chain.template.version
    rows = [(s, s.processor, s.config, i) for i, s in enumerate(steps)]
    rows[2] = (steps[2], "grant_benefit", {"benefit": "chance", "quantity": 0}, 2)
    url = reverse("admin:activities_chain_change", args=[chain.pk])
    response = admin_client_.post(url, chain_post(chain, rows))
    assert response.status_code == 200
    form = response.context["inline_admin_formsets"][0].formset.forms[2]
    assert form.errors["config"] == ["Quantity must be at least 1."]
    assert form.fields["config"].widget.errors == [
        {"path": "quantity", "message": "Quantity must be at least 1."}
    ]
    chain.template.refresh_from_db()
    assert chain.template.version == version


def test_chain_builder_reorders_and_adds_steps_through_the_service(admin_client_, activity):
    chain = Chain.objects.get(template=activity.template)
    steps = list(chain.steps.order_by("position"))
    version = chain.template.version
    rows = [(s, s.processor, s.config, i) for i, s in enumerate(steps)]
    rows[0], rows[1] = (
        (steps[0], "rule_check", steps[0].config, 1),
        (steps[1], steps[1].processor, steps[1].config, 0),
    )
    rows.append((None, "query_assets", {"benefits": ["chance"]}, 4))
    url = reverse("admin:activities_chain_change", args=[chain.pk])
    response = admin_client_.post(url, chain_post(chain, rows))
    assert response.status_code == 302, response.context and response.context["errors"]
    assert list(chain.steps.order_by("position").values_list("processor", flat=True)) == [
        "participation_limit",
        "rule_check",
        "grant_benefit",
        "build_result",
        "query_assets",
    ]
    chain.template.refresh_from_db()
    assert chain.template.version > version


def test_dry_run_shows_the_trace_and_keeps_nothing(activity):
    from activities.models import Channel, ParticipationCounter
    from activities.services.dry_run import dry_run
    from segments.models import Customer

    channel = Channel.objects.get(code="quiz.completed")
    outcome = dry_run(
        activity=activity, channel=channel, customer_external_id="new-42", payload={"score": 80}
    )
    assert (outcome.outcome, outcome.reason) == ("granted", "")
    assert [s["processor"] for s in outcome.steps] == [
        "rule_check",
        "participation_limit",
        "grant_benefit",
        "build_result",
    ]
    assert {s["outcome"] for s in outcome.steps} == {"passed"}
    assert outcome.grants == [{"benefit": "chance", "kind": "chance", "quantity": 1, "value": None}]
    assert outcome.result["balances"] == {"chance": 1}
    for model in (Event, ChainRun, Grant, Participation, ParticipationCounter):
        assert model.objects.count() == 0, model
    assert not Customer.objects.filter(external_id="new-42").exists()

    low = dry_run(
        activity=activity, channel=channel, customer_external_id="new-42", payload={"score": 40}
    )
    assert (low.outcome, low.reason, low.grants) == ("rejected", "rule_not_met", [])
    assert [s["outcome"] for s in low.steps] == ["rejected"]


def test_dry_run_page(admin_client_, activity):
    from activities.models import Channel

    url = reverse("admin:activities_activity_dry_run", args=[activity.pk])
    channel = Channel.objects.get(code="quiz.completed")
    bad = admin_client_.post(url, {"channel": channel.pk, "customer": "c1", "payload": "{not json"})
    assert "payload" in bad.context["form"].errors
    response = admin_client_.post(
        url, {"channel": channel.pk, "customer": "c1", "payload": '{"score": 90}'}
    )
    body = response.content.decode()
    assert 'data-outcome="granted"' in body
    assert body.count("gambit-outcome-passed") == 4
    assert Event.objects.count() == 0


def test_dashboard_funnel_and_daily_series(admin_client_, activity):
    from activities import selectors_dashboard
    from activities.models import Channel
    from tests.factories import CustomerFactory

    channel = Channel.objects.get(code="quiz.completed")
    outcomes = [
        ("granted", "", [{"processor": "rule_check", "outcome": "passed"}]),
        ("granted", "", [{"processor": "rule_check", "outcome": "passed"}]),
        (
            "rejected",
            "rule_not_met",
            [{"processor": "rule_check", "outcome": "rejected", "ms": 0.1}],
        ),
        (
            "rejected",
            "day_limit_reached",
            [
                {"processor": "rule_check", "outcome": "passed"},
                {"processor": "participation_limit", "outcome": "rejected"},
            ],
        ),
        ("skipped", "outside_window", []),
    ]
    for i, (outcome, reason, steps) in enumerate(outcomes):
        customer = CustomerFactory()
        event = Event.objects.create(
            idempotency_key=f"k{i}", request_hash="", channel=channel, customer=customer
        )
        ChainRun.objects.create(
            event=event,
            activity=activity,
            customer=customer,
            outcome=outcome,
            reason=reason,
            steps=steps,
        )
    [row] = selectors_dashboard.activity_funnel()
    assert (row.events, row.passed_rules, row.passed_limits, row.granted) == (4, 3, 2, 2)
    assert (row.rejected, row.failed) == (2, 0)
    data = admin_client_.get(reverse("admin:activities_activity_dashboard")).json()
    assert data["funnel"][0]["events"] == 4
    assert data["runs"][-1]["count"] == 5
    assert len(data["runs"]) == 14
    assert data["grants"][-1]["count"] == 0
    assert data["sends"] is None or data["sends"][-1]["count"] == 0


def test_dry_run_page_names_reasons_kinds_and_settings_in_words(admin_client_, activity):
    from activities.models import Channel

    url = reverse("admin:activities_activity_dry_run", args=[activity.pk])
    channel = Channel.objects.get(code="quiz.completed")
    refused = admin_client_.post(
        url, {"channel": channel.pk, "customer": "c1", "payload": '{"score": 40}'}
    )
    assert refused.context["reason_text"] == reason_label("rule_not_met")
    assert "rule_not_met" not in refused.content.decode()

    granted = admin_client_.post(
        url, {"channel": channel.pk, "customer": "c1", "payload": '{"score": 90}'}
    )
    assert [(g["benefit"], g["kind_label"]) for g in granted.context["grant_rows"]] == [
        ("chance", "chance")
    ]
    assert "{'" not in granted.content.decode()

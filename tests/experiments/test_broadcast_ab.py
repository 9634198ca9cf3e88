"""A broadcast's A/B test end to end, in-process, on PostgreSQL and Redis: the test slice split
by weight, messages really sent (locmem email), conversions from real order events, the winner
picked by the goal at its deadline, the rest sent the winner only, nobody sent two variants."""

import datetime as dt
from collections import Counter

import pytest
from django.core import mail
from django.db.models import Count
from django_celery_beat.models import PeriodicTask
from scipy.stats import chisquare

from activities.engine import assignment
from activities.experiments import broadcasts, selectors
from activities.experiments.broadcasts import VariantSpec
from activities.experiments.services import save_goal
from activities.models import Assignment, Conversion, ExperimentState
from core.errors import InvalidConfiguration, TransitionNotAllowed
from notifications.models import Delivery, DeliveryStatus
from notifications.services import planning, sending
from segments.models import Customer, SegmentMember
from tests.experiments.builders import fire
from tests.factories import ChannelFactory
from tests.notifications.factories import (
    NotificationTemplateFactory,
    make_customers,
    make_segment,
)

pytestmark = pytest.mark.django_db

N = 2000
SHARE = "0.3"
WEIGHTS = {"a": 1, "b": 2}


@pytest.fixture(autouse=True)
def local_email(settings):
    settings.NOTIFICATIONS_EMAIL = {
        **settings.NOTIFICATIONS_EMAIL,
        "BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    settings.NOTIFICATIONS_RATE_LIMITS = {"email": 1_000_000}


def drain(broadcast_id: int) -> None:
    """Plan and send the whole broadcast, as its planner and sender tasks would."""
    while planning.plan_next_page(broadcast_id=broadcast_id) == "more":
        pass
    while sending.send_batch(broadcast_id=broadcast_id).claimed:
        pass


def subjects_by_address() -> dict[str, list[str]]:
    received: dict[str, list[str]] = {}
    for message in mail.outbox:
        received.setdefault(message.to[0], []).append(message.subject)
    return received


@pytest.fixture
def experiment():
    ChannelFactory(code="order.paid")
    ids = make_customers(N)
    segment = make_segment(ids, code="everyone")
    templates = {
        name: NotificationTemplateFactory(subject=f"Variant {name.upper()}", body="Spring sale")
        for name in WEIGHTS
    }
    experiment = broadcasts.create_broadcast_experiment(
        name="Spring sale",
        segment=segment,
        variants=[VariantSpec(name, templates[name], weight) for name, weight in WEIGHTS.items()],
        test_share=SHARE,
        decide_after=dt.timedelta(hours=4),
    )
    save_goal(experiment=experiment, code="paid", channel="order.paid", window=dt.timedelta(days=1))
    return experiment


def test_test_slice_winner_by_goal_and_the_rest_get_the_winner_only(experiment):
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    broadcasts.start_broadcast_experiment(experiment_id=experiment.pk)
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.TESTING
    assert experiment.decide_at == experiment.started_at + dt.timedelta(hours=4)
    assert PeriodicTask.objects.get(name=f"experiment {experiment.pk}: decide").one_off
    assert PeriodicTask.objects.filter(name=broadcasts.CATCH_UP_NAME).exists()

    assert broadcasts.launch_test(experiment_id=experiment.pk)
    assert not broadcasts.launch_test(experiment_id=experiment.pk)  # a duplicate task

    # The test slice and each customer's variant are exactly the pure function's.
    ends = assignment.boundaries(list(WEIGHTS.values()))
    expected = {
        pk: list(WEIGHTS)[assignment.pick(assignment.position(experiment.salt, pk), ends)]
        for pk in ids
        if assignment.in_share(experiment.salt, pk, SHARE)
    }
    placed = dict(
        Assignment.objects.filter(experiment=experiment, phase="test").values_list(
            "customer_id", "variant"
        )
    )
    assert placed == expected
    counts = Counter(placed.values())
    assert chisquare([len(placed), N - len(placed)], [0.3 * N, 0.7 * N]).pvalue > 0.01
    assert (
        chisquare([counts["a"], counts["b"]], [len(placed) / 3, 2 * len(placed) / 3]).pvalue > 0.01
    )

    # Someone joins the segment during the test: they are part of the rest.
    late = make_customers(1, prefix="late")[0]
    SegmentMember.objects.create(segment=experiment.segment, customer_id=late)

    variants = {v.name: v for v in experiment.variants.select_related("broadcast")}
    for variant in variants.values():
        drain(variant.broadcast_id)
    received = subjects_by_address()
    assert len(mail.outbox) == len(placed)
    for pk, variant in placed.items():
        assert received[f"c-{ids.index(pk)}@example.test"] == [f"Variant {variant.upper()}"]

    # Conversions: 10% of A's customers order, 40% of B's; one of B's orders twice.
    by_variant = {name: sorted(pk for pk, v in placed.items() if v == name) for name in WEIGHTS}
    externals = dict(Customer.objects.values_list("pk", "external_id"))
    for name, share in (("a", 0.1), ("b", 0.4)):
        for pk in by_variant[name][: round(share * len(by_variant[name]))]:
            fire("order.paid", externals[pk], {"amount": 10})
    fire("order.paid", externals[by_variant["b"][0]], {"amount": 20})
    # A customer outside the test converts nowhere.
    outside = next(pk for pk in ids if pk not in placed)
    fire("order.paid", externals[outside], {"amount": 10})
    assert dict(Conversion.objects.values_list("variant").annotate(n=Count("pk"))) == {
        name: round(share * len(by_variant[name])) for name, share in (("a", 0.1), ("b", 0.4))
    }

    results = selectors.experiment_results(experiment=experiment)
    assert results.exposures == {name: len(by_variant[name]) for name in WEIGHTS}
    assert [v.status for v in results.goals[0].variants] == ["control", "compared"]

    # Not due yet; then due: the goal picks B.
    assert not broadcasts.decide_if_due(
        experiment_id=experiment.pk, now=experiment.decide_at - dt.timedelta(seconds=1)
    )
    assert broadcasts.decide_if_due(experiment_id=experiment.pk, now=experiment.decide_at)
    experiment.refresh_from_db()
    assert (experiment.state, experiment.winner) == (ExperimentState.DECIDED, "b")
    assert "paid" in experiment.decision
    assert not PeriodicTask.objects.filter(name=f"experiment {experiment.pk}: decide").exists()
    assert not broadcasts.decide_if_due(experiment_id=experiment.pk, now=experiment.decide_at)
    with pytest.raises(TransitionNotAllowed):
        broadcasts.decide_experiment(experiment_id=experiment.pk, winner="a")

    assert broadcasts.roll_out(experiment_id=experiment.pk)
    assert not broadcasts.roll_out(experiment_id=experiment.pk)
    experiment.refresh_from_db()
    mail.outbox.clear()
    drain(experiment.rollout_broadcast_id)
    rest = [pk for pk in [*ids, late] if pk not in placed]
    assert len(mail.outbox) == len(rest)
    assert {m.subject for m in mail.outbox} == {"Variant B"}
    assert {m.to[0] for m in mail.outbox} == {Customer.objects.get(pk=pk).email for pk in rest}

    # Nobody received two variants: one delivery per customer over all of the experiment's
    # broadcasts, every one of them sent.
    experiment_broadcasts = [v.broadcast_id for v in variants.values()] + [
        experiment.rollout_broadcast_id
    ]
    per_customer = Counter(
        Delivery.objects.filter(broadcast_id__in=experiment_broadcasts).values_list(
            "customer_id", flat=True
        )
    )
    assert set(per_customer.values()) == {1}
    assert len(per_customer) == N + 1
    assert set(
        Delivery.objects.filter(broadcast_id__in=experiment_broadcasts).values_list(
            "status", flat=True
        )
    ) == {DeliveryStatus.SENT}
    assert Assignment.objects.filter(experiment=experiment).count() == N + 1


def test_the_operator_picks_the_winner(experiment, django_user_model):
    broadcasts.start_broadcast_experiment(experiment_id=experiment.pk)
    broadcasts.launch_test(experiment_id=experiment.pk)
    with pytest.raises(InvalidConfiguration) as refused:
        broadcasts.decide_experiment(experiment_id=experiment.pk, winner="c")
    assert [e["code"] for e in refused.value.details] == ["unknown_variant"]
    operator = django_user_model.objects.create_superuser("ops", "ops@example.test", "pw")
    broadcasts.decide_experiment(experiment_id=experiment.pk, winner="a", by=operator)
    experiment.refresh_from_db()
    assert (experiment.winner, experiment.decided_by, experiment.decision) == (
        "a",
        operator,
        "Picked by ops.",
    )
    assert broadcasts.roll_out(experiment_id=experiment.pk)
    experiment.refresh_from_db()
    assert experiment.rollout_broadcast.template.subject == "Variant A"


def test_starting_needs_a_goal_and_cancelling_stops_the_test(experiment):
    experiment.goals.all().delete()
    with pytest.raises(InvalidConfiguration) as refused:
        broadcasts.start_broadcast_experiment(experiment_id=experiment.pk)
    assert [e["path"] for e in refused.value.details] == ["goals"]
    save_goal(experiment=experiment, code="paid", channel="order.paid", window=dt.timedelta(days=1))
    broadcasts.start_broadcast_experiment(experiment_id=experiment.pk)
    broadcasts.launch_test(experiment_id=experiment.pk)
    broadcasts.cancel_experiment(experiment_id=experiment.pk)
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.CANCELLED
    states = set(experiment.variants.values_list("broadcast__state", flat=True))
    assert states == {"cancelled"}
    assert not broadcasts.roll_out(experiment_id=experiment.pk)
    assert broadcasts.catch_up(now=experiment.started_at + dt.timedelta(days=1)) == {
        "launched": 0,
        "decided": 0,
        "rolled_out": 0,
    }


def test_creation_checks():
    segment = make_segment([], code="nobody")
    template = NotificationTemplateFactory()
    with pytest.raises(InvalidConfiguration) as refused:
        broadcasts.create_broadcast_experiment(
            name="x",
            segment=segment,
            variants=[VariantSpec("a", template, 0), VariantSpec("A!", template, -1)],
            test_share="1.5",
            decide_after=None,
        )
    assert sorted((e["path"], e["code"]) for e in refused.value.details) == [
        ("decide_after", "required"),
        ("test_share", "invalid"),
        ("variants", "invalid_weights"),
        ("variants[1].name", "invalid"),
        ("variants[1].weight", "invalid"),
    ]


def test_the_clock_tasks_and_the_catch_up(experiment):
    from activities.experiments import tasks

    broadcasts.start_broadcast_experiment(experiment_id=experiment.pk)
    experiment.refresh_from_db()
    # The launch task was lost: the catch-up launches the test after its grace period.
    assert broadcasts.catch_up(now=experiment.started_at) == {
        "launched": 0,
        "decided": 0,
        "rolled_out": 0,
    }
    assert broadcasts.catch_up(now=experiment.started_at + dt.timedelta(minutes=2)) == {
        "launched": 1,
        "decided": 0,
        "rolled_out": 0,
    }
    assert tasks.launch_test_task.apply(args=[experiment.pk]).get() is False
    # Beat fires the one-off early (clock skew): nothing happens; at the deadline, the pick and
    # the rollout happen in the task.
    assert tasks.decide_experiment_task.apply(args=[experiment.pk]).get() is False
    type(experiment).objects.filter(pk=experiment.pk).update(decide_at=experiment.started_at)
    assert tasks.decide_experiment_task.apply(args=[experiment.pk]).get() is True
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.DECIDED
    assert experiment.rolled_out_at is not None
    assert experiment.rollout_broadcast.state == "sending"
    assert tasks.roll_out_task.apply(args=[experiment.pk]).get() is False
    assert tasks.catch_up_experiments_task.apply().get() == {
        "launched": 0,
        "decided": 0,
        "rolled_out": 0,
    }

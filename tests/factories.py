"""factory_boy factories for every model the tests build."""

import datetime as dt

import factory
from django.utils import timezone

from activities.models import (
    Activity,
    Benefit,
    BenefitKind,
    Chain,
    ChainStep,
    Channel,
    StrategyTemplate,
)
from core.models import ALL_SCOPES, StorefrontKey
from segments.models import Customer


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"cust-{n}")
    name = factory.Faker("name")


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"channel.{n}")


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StrategyTemplate

    code = factory.Sequence(lambda n: f"template-{n}")
    name = factory.Faker("sentence", nb_words=3)


class ChainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Chain

    template = factory.SubFactory(TemplateFactory)
    channel = factory.SubFactory(ChannelFactory)
    requires_lock = True


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChainStep

    chain = factory.SubFactory(ChainFactory)
    position = factory.Sequence(lambda n: n)
    processor = "build_result"
    config = factory.LazyFunction(dict)


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    code = factory.Sequence(lambda n: f"activity-{n}")
    name = factory.Faker("sentence", nb_words=3)
    template = factory.SubFactory(TemplateFactory)
    timezone = "Asia/Shanghai"
    starts_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))

    class Params:
        running = factory.Trait(state="running")


class BenefitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Benefit

    activity = factory.SubFactory(ActivityFactory)
    code = factory.Sequence(lambda n: f"benefit-{n}")
    kind = BenefitKind.COUPON
    stock_total = None
    stock_remaining = factory.LazyAttribute(lambda o: o.stock_total)


def make_api_key(
    name: str = "storefront", scopes: list[str] | None = None
) -> tuple[StorefrontKey, str]:
    """A key with every scope unless told otherwise (a new key itself has none)."""
    return StorefrontKey.objects.create_key(
        name=name, scopes=list(ALL_SCOPES) if scopes is None else scopes
    )


def build_quiz_lottery(
    *, code: str = "spring", prize_stock: int = 10, coupon_stock: int = 1000
) -> Activity:
    """The DESIGN.md appendix activity (quiz -> chance -> lottery), running."""
    template = TemplateFactory(code=f"{code}-quiz-lottery")
    quiz = ChainFactory(template=template, channel=ChannelFactory(code="quiz.completed"))
    StepFactory(
        chain=quiz,
        position=0,
        processor="rule_check",
        config={"all": [{"field": "event.score", "op": "gte", "value": 60}]},
    )
    StepFactory(
        chain=quiz,
        position=1,
        processor="participation_limit",
        config={"key": "quiz-chance", "per": "day", "limit": 1},
    )
    StepFactory(
        chain=quiz,
        position=2,
        processor="grant_benefit",
        config={"benefit": "chance", "quantity": 1},
    )
    StepFactory(chain=quiz, position=3, processor="build_result")
    draw = ChainFactory(template=template, channel=ChannelFactory(code="lottery.draw"))
    StepFactory(
        chain=draw,
        position=0,
        processor="rule_check",
        config={"all": [{"field": "participation.chance", "op": "gte", "value": 1}]},
    )
    StepFactory(
        chain=draw,
        position=1,
        processor="lottery_draw",
        config={
            "cost": {"benefit": "chance", "quantity": 1},
            "prizes": [{"benefit": "big-prize", "weight": 1}, {"benefit": "coupon-5", "weight": 9}],
            "fallback": None,
        },
    )
    StepFactory(chain=draw, position=2, processor="build_result")
    activity = ActivityFactory(code=code, template=template, running=True)
    BenefitFactory(activity=activity, code="chance", kind="chance")
    BenefitFactory(
        activity=activity,
        code="big-prize",
        kind="prize",
        stock_total=prize_stock,
        per_customer_limit=1,
    )
    BenefitFactory(
        activity=activity,
        code="coupon-5",
        kind="coupon",
        stock_total=coupon_stock,
        per_customer_limit=1,
        value="5.00",
    )
    return activity

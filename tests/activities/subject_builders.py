"""Activities on the gameplay-subject processors, built step by step (the gameplay library
builds the same chains from its forms; these keep the engine tests independent of it)."""

from activities.models import Activity, ChainRun, Event
from activities.services.events import accept_event, process_event
from tests.factories import (
    ActivityFactory,
    BenefitFactory,
    ChainFactory,
    ChannelFactory,
    StepFactory,
    TemplateFactory,
    make_api_key,
)


def _chain(template, channel, steps):
    chain = ChainFactory(template=template, channel=ChannelFactory(code=channel))
    for position, (processor, config, *when) in enumerate(steps):
        StepFactory(
            chain=chain,
            position=position,
            processor=processor,
            config=config,
            when=when[0] if when else None,
        )
    return chain


def build_group_buy(*, code: str = "group", size: int = 3, lifetime_minutes: int = 60) -> Activity:
    template = TemplateFactory(code=f"{code}-group-buy")
    _chain(
        template,
        "team.open",
        [
            ("open_team", {"size": size, "lifetime_minutes": lifetime_minutes}),
            ("build_result", {}),
        ],
    )
    _chain(
        template,
        "team.join",
        [
            ("join_team", {}),
            (
                "emit_event",
                {
                    "channel": "team.completed",
                    "to": {"field": "subject.customers"},
                    "payload": {"team": {"field": "subject.code"}},
                },
                {"all": [{"field": "subject.state", "op": "eq", "value": "complete"}]},
            ),
            ("build_result", {}),
        ],
    )
    _chain(
        template,
        "team.completed",
        [("grant_benefit", {"benefit": "group-price"}), ("build_result", {})],
    )
    activity = ActivityFactory(code=code, template=template, running=True)
    BenefitFactory(activity=activity, code="group-price", kind="coupon")
    return activity


def build_assist(
    *, code: str = "assist", needed: int = 3, new_only: bool = False, daily_cap: int = 0
) -> Activity:
    template = TemplateFactory(code=f"{code}-assist")
    _chain(
        template,
        "assist.start",
        [
            ("open_help_request", {"helpers_needed": needed, "lifetime_minutes": 60}),
            ("build_result", {}),
        ],
    )
    helping = [("participation_limit", {"key": "helps", "per": "day", "limit": daily_cap})]
    _chain(
        template,
        "assist.help",
        (helping if daily_cap else [])
        + [
            ("assist", {"new_customers_only": new_only}),
            (
                "emit_event",
                {
                    "channel": "assist.fulfilled",
                    "to": {"field": "subject.initiator"},
                    "payload": {"request": {"field": "subject.code"}},
                },
                {"all": [{"field": "subject.state", "op": "eq", "value": "fulfilled"}]},
            ),
            ("build_result", {}),
        ],
    )
    _chain(
        template,
        "assist.fulfilled",
        [("grant_benefit", {"benefit": "free-gift"}), ("build_result", {})],
    )
    activity = ActivityFactory(code=code, template=template, running=True)
    BenefitFactory(activity=activity, code="free-gift", kind="prize")
    return activity


def build_vote(*, code: str = "vote", per_day: int = 3, candidates=None) -> Activity:
    template = TemplateFactory(code=f"{code}-vote")
    count = {"key": "votes", "kind": "candidate", "field": "event.candidate", "once_per": "day"}
    if candidates:
        count["subjects"] = candidates
    _chain(
        template,
        "vote.cast",
        [
            ("participation_limit", {"key": "votes", "per": "day", "limit": per_day}),
            ("count_subject", count),
            ("build_result", {"fields": {"tally": "subject.votes"}}),
        ],
    )
    return ActivityFactory(code=code, template=template, running=True)


def build_leaderboard(*, code: str = "board", aggregate: str = "sum", prizes=None) -> Activity:
    template = TemplateFactory(code=f"{code}-leaderboard")
    config = {"aggregate": aggregate}
    if aggregate != "count":
        config["field"] = "event.points"
    prizes = (
        prizes
        if prizes is not None
        else [
            {"up_to_rank": 1, "benefit": "gold"},
            {"up_to_rank": 3, "benefit": "silver"},
        ]
    )
    if prizes:
        config["prizes"] = prizes
    _chain(template, "game.scored", [("leaderboard_score", config), ("build_result", {})])
    activity = ActivityFactory(code=code, template=template, running=True)
    BenefitFactory(activity=activity, code="gold", kind="prize", stock_total=1)
    BenefitFactory(activity=activity, code="silver", kind="prize", stock_total=2)
    return activity


class Driver:
    """Fires events in-process and runs every event they emit, as workers would."""

    def __init__(self) -> None:
        self.client = make_api_key()[0]
        self.fired = 0

    def fire(self, channel: str, customer: str, payload: dict | None = None) -> ChainRun:
        self.fired += 1
        event, _ = accept_event(
            client=self.client,
            idempotency_key=f"driver-{self.fired}",
            channel_code=channel,
            customer_external_id=customer,
            payload=payload or {},
        )
        process_event(event_id=event.pk)
        return ChainRun.objects.get(event=event)

    def drain(self) -> list[ChainRun]:
        runs = []
        while pending := Event.objects.filter(state="pending").order_by("created_at").first():
            process_event(event_id=pending.pk)
            runs.extend(ChainRun.objects.filter(event=pending))
        return runs

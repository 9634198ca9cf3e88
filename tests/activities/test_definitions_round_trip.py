"""Property: any canonical activity definition document imports, exports and imports again
unchanged (random benefits, chains, steps, conditions, zones and windows)."""

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from activities.definitions import dump_definition, export_definition, import_definition, parse_text
from core.errors import InvalidConfiguration
from core.timezones import to_utc
from tests.properties.strategies import trees as rule_trees

pytestmark = pytest.mark.django_db

code_text = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)
channel_text = st.from_regex(r"[a-z]{1,6}\.[a-z]{1,6}", fullmatch=True)
label = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)
amount_text = st.decimals(min_value=0, max_value=10**6, places=2).map(str)
ZONES = ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York"]


@st.composite
def benefits(draw):
    codes = draw(st.lists(code_text, min_size=1, max_size=4, unique=True))
    items = []
    for code in codes:
        item = {
            "code": code,
            "kind": draw(st.sampled_from(["coupon", "points", "prize", "chance", "cash"])),
        }
        for key, strategy in (
            ("name", label),
            ("stock", st.integers(0, 10**6)),
            ("per_customer_limit", st.integers(1, 100)),
            ("value", amount_text),
        ):
            if draw(st.booleans()):
                item[key] = draw(strategy)
        items.append(item)
    return items


def step_strategy(benefit_codes):
    benefit = st.sampled_from(benefit_codes)
    configs = st.one_of(
        st.just(("build_result", {})),
        label.map(lambda text: ("build_result", {"message": text})),
        st.tuples(
            st.just("grant_benefit"),
            st.fixed_dictionaries({"benefit": benefit, "quantity": st.integers(1, 5)}),
        ),
        st.integers(-1000, 1000).map(
            lambda n: ("rule_check", {"all": [{"field": "event.score", "op": "gte", "value": n}]})
        ),
        # Any condition tree (all/any/not, every operator, typed values) survives the trip.
        rule_trees.map(lambda tree: ("rule_check", tree)),
        st.tuples(
            st.just("participation_limit"),
            st.fixed_dictionaries(
                {
                    "key": st.from_regex(r"[a-z0-9_-]{1,10}", fullmatch=True),
                    "per": st.sampled_from(["day", "customer", "activity"]),
                    "limit": st.integers(1, 10),
                }
            ),
        ),
        st.tuples(
            st.just("lottery_draw"),
            st.fixed_dictionaries(
                {
                    "prizes": st.lists(
                        st.fixed_dictionaries(
                            {
                                "benefit": st.one_of(st.none(), benefit),
                                "weight": st.integers(1, 100),
                            }
                        ),
                        min_size=1,
                        max_size=3,
                    ),
                    "fallback": st.one_of(st.none(), benefit),
                }
            ),
        ),
        st.just(("emit_event", {"channel": "sink.channel"})),
    )

    @st.composite
    def step(draw):
        processor, config = draw(configs)
        item = {"processor": processor}
        if config:
            item["config"] = config
        if draw(st.booleans()):
            item["when"] = draw(
                st.one_of(
                    st.lists(st.integers(0, 9), max_size=3).map(
                        lambda values: {"field": "customer.level", "op": "in", "value": values}
                    ),
                    rule_trees,
                )
            )
        if draw(st.booleans()):
            item["on_error"] = "continue"
        return item

    return step()


@st.composite
def documents(draw):
    zone = draw(st.sampled_from(ZONES))
    starts = draw(
        st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1))
    ).replace(microsecond=0)
    ends = starts + dt.timedelta(seconds=draw(st.integers(3 * 3600, 400 * 86400)))
    for wall in (starts, ends):
        try:
            to_utc(wall, zone)
        except InvalidConfiguration:
            assume(False)
    benefit_items = draw(benefits())
    codes = [item["code"] for item in benefit_items]
    channels = draw(
        st.lists(
            channel_text.filter(lambda c: c != "sink.channel"), min_size=1, max_size=3, unique=True
        )
    )
    template = draw(code_text)
    document = {
        "code": draw(code_text),
        "name": draw(label),
        "template": template,
    }
    template_name = draw(st.one_of(st.none(), label))
    if template_name is not None and template_name != template:
        document["template_name"] = template_name
    document.update(
        timezone=zone,
        starts_at=starts.isoformat(timespec="seconds"),
        ends_at=ends.isoformat(timespec="seconds"),
        segment=None,
    )
    if draw(st.booleans()):
        document["budget"] = draw(amount_text)
    if draw(st.booleans()):
        document["on_exhausted"] = "end"
    document["benefits"] = benefit_items
    document["chains"] = [
        {
            "channel": channel,
            "lock": draw(st.booleans()),
            "steps": draw(st.lists(step_strategy(codes), min_size=1, max_size=4)),
        }
        for channel in channels
    ]
    return document


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=documents())
def test_random_canonical_documents_round_trip_exactly(document):
    with transaction.atomic():
        exported = export_definition(activity=import_definition(document=document))
        assert exported == document
        assert parse_text(dump_definition(exported)) == document
        transaction.set_rollback(True)
    # Into an empty environment again, from the exported text.
    with transaction.atomic():
        again = import_definition(document=parse_text(dump_definition(exported, format="json")))
        assert export_definition(activity=again) == document
        transaction.set_rollback(True)

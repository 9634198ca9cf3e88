"""Hypothesis strategies for condition trees whose every value is typed for its field, so
that both the chains' parser and the segments' type check accept every tree drawn."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

TAGS = ["1", "11", "vip"]
WORDS = ["", "gold", "Gold", "silver", "gold ", "go", "shanghai", "上海", "it's", "%", "_"]
ATTRIBUTE_KEYS = ["score", "city", "flag", "codes"]

aware = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 1, 1)).map(
    lambda d: d.replace(tzinfo=dt.UTC, microsecond=0)
)

# --- rules (each value typed for its field, so check_rule accepts every tree) ---------------

date_text = st.dates(dt.date(1980, 1, 1), dt.date(2010, 1, 1)).map(dt.date.isoformat)
offset = st.sampled_from(["+00:00", "+08:00", "-05:00", "Z"])
datetime_text = st.tuples(aware, offset).map(
    lambda pair: pair[0].replace(tzinfo=None).isoformat() + pair[1]
)


def condition(field: str, ops: dict) -> st.SearchStrategy:
    return st.sampled_from(sorted(ops)).flatmap(
        lambda op: ops[op].map(lambda value: {"field": field, "op": op, "value": value})
    )


def typed_ops(scalar: st.SearchStrategy, *, ordered: bool, text: bool) -> dict:
    ops = {
        "eq": scalar,
        "ne": scalar,
        "in": st.lists(scalar, min_size=1, max_size=3),
        "not_in": st.lists(scalar, min_size=1, max_size=3),
        "exists": st.booleans(),
    }
    if ordered:
        ops.update(
            {op: scalar for op in ("gt", "gte", "lt", "lte")},
            between=st.lists(scalar, min_size=2, max_size=2),
        )
    if text:
        ops["contains"] = scalar
    return ops


attribute_scalars = st.one_of(
    st.sampled_from([*WORDS, "45", "abc"]).map(lambda v: ("text", v)),
    st.one_of(st.integers(-5, 100), st.sampled_from([0.5, 45.0, 59.99])).map(lambda v: ("num", v)),
    st.booleans().map(lambda v: ("bool", v)),
)


@st.composite
def attribute_condition(draw) -> dict:
    field = f"customer.attributes.{draw(st.sampled_from(ATTRIBUTE_KEYS))}"
    kind, sample = draw(attribute_scalars)
    same = {
        "text": st.sampled_from([*WORDS, "45", "abc"]),
        "num": st.one_of(st.integers(-5, 100), st.sampled_from([0.5, 45.0, 59.99])),
        "bool": st.booleans(),
    }[kind]
    ops = ["eq", "ne", "in", "not_in", "exists", "contains"]
    if kind != "bool":
        ops += ["gt", "gte", "lt", "lte", "between"]
    if kind == "bool":
        ops = ["eq", "ne", "contains", "exists"]
    op = draw(st.sampled_from(ops))
    if op == "exists":
        return {"field": field, "op": op, "value": draw(st.booleans())}
    if op in ("in", "not_in"):
        return {"field": field, "op": op, "value": [sample, *draw(st.lists(same, max_size=2))]}
    if op == "between":
        return {"field": field, "op": op, "value": [sample, draw(same)]}
    return {"field": field, "op": op, "value": sample}


conditions = st.one_of(
    condition("customer.level", typed_ops(st.sampled_from(WORDS), ordered=False, text=True)),
    condition("customer.name", typed_ops(st.sampled_from(WORDS), ordered=False, text=True)),
    condition(
        "customer.email",
        typed_ops(st.sampled_from([*WORDS, "a@example.com"]), ordered=False, text=True),
    ),
    condition("customer.birthday", typed_ops(date_text, ordered=True, text=False)),
    condition(
        "customer.unsubscribed_at",
        {
            **{op: datetime_text for op in ("gt", "gte", "lt", "lte")},
            "between": st.lists(datetime_text, min_size=2, max_size=2),
            "exists": st.booleans(),
        },
    ),
    condition("customer.email_consent", {"eq": st.booleans(), "ne": st.booleans()}),
    condition(
        "customer.tags",
        {
            "contains": st.sampled_from(TAGS),
            "in": st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
            "not_in": st.lists(st.sampled_from(TAGS), min_size=1, max_size=3),
            "exists": st.booleans(),
        },
    ),
    attribute_condition(),
)

trees = st.recursive(
    conditions,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda items: {"all": items}),
        st.lists(children, min_size=1, max_size=3).map(lambda items: {"any": items}),
        children.map(lambda child: {"not": child}),
    ),
    max_leaves=6,
)

"""Segment rules: the shared condition grammar (`core.rules`) over customers, compiled to
one SQL query.

Field names are the chains' (`customer.level`, `customer.tags`, `customer.attributes.x`), plus
order aggregates (`customer.orders.paid_last_2d`, `...total_spent`, `...days_since_last`,
`...paid_count`). Every value is type-checked against its field before anything runs, so a
bad rule is a 400 / form error naming the path, never a database error.

How each kind of field becomes SQL:
- profile columns: plain lookups on the customer row (indexed where segments need it);
- tags: EXISTS over the (customer, tag) table - exact by construction, "1" never matches "11";
- attributes: typed reads of the JSON value (a number, a string, a boolean), never a cast
  that could fail on someone's data;
- order aggregates: correlated subqueries over the customer's paid orders (one probe of a
  covering partial index each; the zone is the outer row's). "Paid in the last N days" is
  also guarded by `id IN (customers with a recent paid order)`, which the partial index on
  recent paid orders answers, so it reads the recent orders rather than every customer.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateTimeField,
    DecimalField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    IntegerField,
    JSONField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import DataContains, KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce, Length, NullIf
from django.db.models.lookups import (
    Contains,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Range,
    Regex,
)
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from core.rules import (
    MAX_NUMERIC_TEXT_LENGTH,
    NUMERIC_PATTERN,
    All,
    AnyOf,
    Condition,
    Node,
    Not,
    RuleError,
    compile_predicate,
    compile_q,
    lookup_q,
    parse,
)
from segments.models import PAID_STATES, CustomerTag, Order
from segments.rule_fields import (
    CUSTOMER_ATTRIBUTE_PREFIX,
    CUSTOMER_FIELDS,
    ORDER_AGGREGATE_PREFIX,
    ORDER_AGGREGATES,
)

ROOT = "customer."
MAX_WINDOW_DAYS = 3650
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
PAID_WINDOW = re.compile(r"^paid_last_(\d{1,4})d$")
# The chains' test of a number in text (core.rules), so a JSON "60" compares like the chain's 60.
NUMERIC_TEXT = rf"^\s*{NUMERIC_PATTERN}\s*$"

STRING, DATE, DATETIME, BOOL, TAGS = "string", "date", "datetime", "bool", "tags"
NUMBER, INTEGER = "number", "integer"

PROFILE_TYPES = {
    "external_id": STRING,
    "name": STRING,
    "email": STRING,
    "phone": STRING,
    "timezone": STRING,
    "locale": STRING,
    "level": STRING,
    "wechat_openid": STRING,
    "birthday": DATE,
    "created_at": DATETIME,
    "unsubscribed_at": DATETIME,
    "email_consent": BOOL,
    "sms_consent": BOOL,
    "wechat_consent": BOOL,
    "tags": TAGS,
}
assert set(PROFILE_TYPES) == CUSTOMER_FIELDS, "every shared customer field needs an SQL type"

OPERATORS_BY_TYPE = {
    STRING: ("eq", "ne", "in", "not_in", "contains", "exists"),
    DATE: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists"),
    DATETIME: ("gt", "gte", "lt", "lte", "between", "exists"),
    BOOL: ("eq", "ne"),
    TAGS: ("contains", "in", "not_in", "exists"),
    NUMBER: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in"),
    INTEGER: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in"),
}


@dataclass(frozen=True)
class FieldSpec:
    """What a rule field is: its value type and how to reach it."""

    kind: str  # "profile" | "attribute" | "order"
    value_type: str
    name: str  # the column, the attribute key path, or the aggregate name
    window_days: int = 0


def field_spec(field: str) -> FieldSpec:
    """The spec of a segment field, or RuleError("unknown_field")."""
    if not field.startswith(ROOT):
        raise RuleError(
            "",
            _("Unknown field %(field)r; a segment reads customer fields such as customer.level.")
            % {"field": field},
            "unknown_field",
        )
    rest = field[len(ROOT) :]
    if rest in PROFILE_TYPES:
        return FieldSpec("profile", PROFILE_TYPES[rest], rest)
    if rest.startswith(CUSTOMER_ATTRIBUTE_PREFIX):
        keys = rest[len(CUSTOMER_ATTRIBUTE_PREFIX) :].split(".")
        if not all(ATTRIBUTE_KEY.match(key) for key in keys):
            raise RuleError(
                "",
                _(
                    "Attribute keys are 1-64 letters, digits, _ or -, "
                    "e.g. customer.attributes.city."
                ),
                "unknown_field",
            )
        return FieldSpec("attribute", "json", ".".join(keys))
    if rest.startswith(ORDER_AGGREGATE_PREFIX):
        name = rest[len(ORDER_AGGREGATE_PREFIX) :]
        window = PAID_WINDOW.match(name)
        if window:
            days = int(window.group(1))
            if not 1 <= days <= MAX_WINDOW_DAYS:
                raise RuleError(
                    "",
                    _("N in paid_last_<N>d must be 1 to %(max)d.") % {"max": MAX_WINDOW_DAYS},
                    "unknown_field",
                )
            return FieldSpec("order", INTEGER, "paid_last", days)
        if name in ("paid_count", "days_since_last"):
            return FieldSpec("order", INTEGER, name)
        if name == "total_spent":
            return FieldSpec("order", NUMBER, name)
        raise RuleError(
            "",
            _("Unknown order aggregate %(name)r; use one of %(known)s.")
            % {"name": name, "known": ", ".join(sorted(ORDER_AGGREGATES))},
            "unknown_field",
        )
    known = ", ".join(sorted(CUSTOMER_FIELDS))
    raise RuleError(
        "",
        _(
            "Unknown customer field %(field)r; use one of %(known)s, attributes.<key> or "
            "orders.<aggregate>."
        )
        % {"field": rest, "known": known},
        "unknown_field",
    )


def check_segment_field(field: str) -> None:
    field_spec(field)


# --- values ------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _scalar_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return BOOL
    if _is_number(value):
        return NUMBER
    if isinstance(value, str):
        return STRING
    return None


def _convert(value: Any, value_type: str) -> Any:
    """One literal in the field's type, or ValueError with what was expected."""
    if value_type in (STRING, TAGS):
        if not isinstance(value, str) or (value_type == TAGS and not value):
            raise ValueError(_("a string") if value_type == STRING else _("a tag code"))
        return value
    if value_type == BOOL:
        if not isinstance(value, bool):
            raise ValueError(_("true or false"))
        return value
    if value_type == NUMBER:
        if not _is_number(value):
            raise ValueError(_("a number"))
        return Decimal(str(value))
    if value_type == INTEGER:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(_("a whole number"))
        return value
    if value_type == DATE:
        parsed = parse_date(value) if isinstance(value, str) else None
        if parsed is None:
            raise ValueError(_("a date such as 1990-05-31"))
        return parsed
    if value_type == DATETIME:
        try:
            parsed_at = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:
            parsed_at = None
        if parsed_at is None or timezone.is_naive(parsed_at):
            raise ValueError(_("a date-time with a UTC offset such as 2026-01-31T10:00:00+08:00"))
        return parsed_at
    raise AssertionError(value_type)


def _typed(condition: Condition, path: str) -> Condition:
    spec = field_spec(condition.field)
    op, value = condition.op, condition.value
    value_path = f"{path}.value" if path else "value"
    if spec.kind == "attribute":
        return _typed_attribute(condition, value_path)
    allowed = OPERATORS_BY_TYPE[spec.value_type]
    if spec.name == "days_since_last":
        allowed = (*allowed, "exists")
    if op not in allowed:
        raise RuleError(
            f"{path}.op" if path else "op",
            _("Operator %(op)s does not apply to %(field)s; use one of %(allowed)s.")
            % {"op": op, "field": condition.field, "allowed": ", ".join(allowed)},
            "unknown_operator",
        )
    if op == "exists":
        return condition
    try:
        if op in ("in", "not_in", "between"):
            converted: Any = tuple(_convert(item, spec.value_type) for item in value)
        else:
            converted = _convert(value, spec.value_type)
    except ValueError as error:
        raise RuleError(
            value_path,
            _("%(field)s %(op)s takes %(expected)s.")
            % {"field": condition.field, "op": op, "expected": error},
            "invalid_value",
        ) from None
    return Condition(condition.field, op, converted)


def _typed_attribute(condition: Condition, value_path: str) -> Condition:
    op, value = condition.op, condition.value
    if op == "exists":
        return condition
    items = value if op in ("in", "not_in", "between") else (value,)
    kinds = {_scalar_type(item) for item in items}
    if None in kinds or len(kinds) != 1:
        raise RuleError(
            value_path,
            (
                _("%(field)s %(op)s takes strings, numbers or true/false, all of one type.")
                if len(items) > 1
                else _("%(field)s %(op)s takes a string, a number or true/false.")
            )
            % {"field": condition.field, "op": op},
            "invalid_value",
        )
    kind = kinds.pop()
    if kind == BOOL and op not in ("eq", "ne", "contains"):
        raise RuleError(
            value_path, _("%(op)s does not compare true/false.") % {"op": op}, "invalid_value"
        )
    converted = tuple(Decimal(str(v)) if kind == NUMBER else v for v in items)
    checked: Any = converted if op in ("in", "not_in", "between") else converted[0]
    return Condition(condition.field, op, checked)


def check_rule(tree: Any) -> Node:
    """Parse and type-check a segment rule; RuleError names the path of the first problem."""
    return _typed_tree(parse(tree, check_field=check_segment_field), "")


def _typed_tree(node: Node, path: str) -> Node:
    def join(part: str) -> str:
        return f"{path}.{part}" if path else part

    if isinstance(node, All):
        return All(
            tuple(_typed_tree(c, f"{join('all')}[{i}]") for i, c in enumerate(node.children))
        )
    if isinstance(node, AnyOf):
        return AnyOf(
            tuple(_typed_tree(c, f"{join('any')}[{i}]") for i, c in enumerate(node.children))
        )
    if isinstance(node, Not):
        return Not(_typed_tree(node.child, join("not")))
    return _typed(node, path)


# --- SQL -----------------------------------------------------------------------------------


class _Sql(Expression):
    """A fixed SQL fragment over a few expressions: `template` with {0}, {1}, ... slots."""

    def __init__(self, template: str, *expressions: Any, output_field: Any) -> None:
        super().__init__(output_field=output_field)
        self.template = template
        self.expressions = [e if hasattr(e, "resolve_expression") else F(e) for e in expressions]

    def get_source_expressions(self) -> list[Any]:
        return self.expressions

    def set_source_expressions(self, exprs: Any) -> None:
        self.expressions = list(exprs)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        compiled = [compiler.compile(expression) for expression in self.expressions]
        # A slot may appear twice; parameters follow the order the slots appear in.
        order = [int(slot) for slot in re.findall(r"\{(\d+)\}", self.template)]
        sql = self.template.format(*(part for part, _ in compiled))
        return sql, [param for slot in order for param in compiled[slot][1]]


def customer_timezone(reference: type[F] | type[OuterRef]) -> Expression:
    """The customer's zone (`F`: this row's, `OuterRef`: the outer customer's), or the default
    zone when none is stored. Cleansing stores only zones PostgreSQL knows, so `AT TIME ZONE`
    cannot fail on stored data."""
    return Coalesce(
        NullIf(reference("timezone"), Value("")),
        Value(settings.GAMBIT_DEFAULT_TIMEZONE),
        output_field=CharField(),
    )


def local_day_start(*, now: dt.datetime, days_back: int, tz: Expression) -> Expression:
    """Midnight, in zone `tz`, of the local day `days_back` days before `now`'s local day."""
    return _Sql(
        "((date_trunc('day', ({0})::timestamptz AT TIME ZONE {1})"
        f" - interval '{int(days_back)} days') AT TIME ZONE {{1}})",
        Value(now),
        tz,
        output_field=DateTimeField(),
    )


def local_days_since(*, at: Expression, now: dt.datetime, tz: Expression) -> Expression:
    """Calendar days from `at` to `now`, both read in zone `tz`."""
    return _Sql(
        "((({1})::timestamptz AT TIME ZONE {0})::date - ({2} AT TIME ZONE {0})::date)",
        tz,
        Value(now),
        at,
        output_field=IntegerField(),
    )


def expression_q(expression: Any, op: str, value: Any) -> Q:
    """`lookup_q` for a computed expression, with the same NULL semantics."""
    if op == "exists":
        return Q(IsNull(expression, not value))
    if op == "ne":
        return ~Q(Exact(expression, value)) | Q(IsNull(expression, True))
    if op == "not_in":
        return ~Q(In(expression, list(value))) | Q(IsNull(expression, True))
    lookup = {
        "eq": Exact,
        "gt": GreaterThan,
        "gte": GreaterThanOrEqual,
        "lt": LessThan,
        "lte": LessThanOrEqual,
        "in": In,
        "between": Range,
        "contains": Contains,
    }[op]
    return Q(lookup(expression, list(value) if op == "in" else value))


def _tag_q(condition: Condition) -> Q:
    links = CustomerTag.objects.filter(customer_id=OuterRef("pk"))
    op, value = condition.op, condition.value
    if op == "exists":
        return Q(Exists(links)) if value else ~Q(Exists(links))
    if op == "contains":
        return Q(Exists(links.filter(tag__code=value)))
    has_any = Q(Exists(links.filter(tag__code__in=value)))
    return has_any if op == "in" else ~has_any


def _profile_q(spec: FieldSpec, condition: Condition) -> Q:
    if spec.value_type == TAGS:
        return _tag_q(condition)
    if spec.value_type == STRING and condition.op == "exists":
        # Text columns store "no value" as "": exists means "has a non-empty value".
        blank = Q(**{spec.name: ""})
        return ~blank if condition.value else blank
    return lookup_q(spec.name, condition)


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _attribute_q(spec: FieldSpec, condition: Condition) -> Q:
    keys = spec.name.split(".")
    parent: Any = "attributes"
    for key in keys[:-1]:
        parent = KeyTransform(key, parent)
    json_value = KeyTransform(keys[-1], parent)
    text = KeyTextTransform(keys[-1], parent)
    json_type = _Sql("jsonb_typeof({0})", json_value, output_field=CharField())
    op, value = condition.op, condition.value
    if op == "exists":
        # As the chains' predicate: null, "", [] and {} are no value.
        present = _Sql(
            "(jsonb_typeof({0}) IS NOT NULL AND "
            """{0} NOT IN ('null'::jsonb, '""'::jsonb, '[]'::jsonb, '{{}}'::jsonb))""",
            json_value,
            output_field=BooleanField(),
        )
        return Q(Exact(present, bool(value)))
    sample = value[0] if op in ("in", "not_in", "between") else value
    kind = _scalar_type(sample)
    if op == "contains":
        literal = _json_number(value) if kind == NUMBER else value
        in_array = Q(Exact(json_type, "array")) & Q(
            DataContains(json_value, Value([literal], output_field=JSONField()))
        )
        if kind != STRING:
            return in_array
        return in_array | expression_q(_text_of(json_type, text), op, value)
    if kind == NUMBER:
        numeric = _Sql("({0})::numeric", text, output_field=DecimalField())
        typed: Any = Case(
            When(Q(Exact(json_type, "number")), then=numeric),
            When(
                Q(Exact(json_type, "string"))
                & Q(LessThanOrEqual(Length(text), MAX_NUMERIC_TEXT_LENGTH))
                & Q(Regex(text, NUMERIC_TEXT)),
                then=numeric,
            ),
            output_field=DecimalField(),
        )
    elif kind == BOOL:
        typed = Case(
            When(
                Q(Exact(json_type, "boolean")),
                then=_Sql("({0})::boolean", json_value, output_field=BooleanField()),
            ),
            output_field=BooleanField(),
        )
    else:
        typed = _text_of(json_type, text)
    if op in ("in", "not_in"):
        return _attribute_in_q(typed, json_type, json_value, kind, op, value)
    return expression_q(typed, op, value)


def _attribute_in_q(
    typed: Any, json_type: Expression, json_value: Expression, kind: str | None, op: str, value: Any
) -> Q:
    """in / not_in as the chains read them: a scalar equal to one of the values, or an array
    holding one of them (as JSON: true is not 1, "1" is not 1). NULL (no such attribute)
    counts as "not in", so not_in selects it."""
    literals = [_json_number(v) if kind == NUMBER else v for v in value]
    hit = Q(In(typed, list(value)))
    for literal in literals:
        hit |= Q(Exact(json_type, "array")) & Q(
            DataContains(json_value, Value([literal], output_field=JSONField()))
        )
    known = Coalesce(ExpressionWrapper(hit, BooleanField()), Value(False))
    return Q(Exact(known, op == "in"))


def _text_of(json_type: Expression, text: Expression) -> Expression:
    return Case(When(Q(Exact(json_type, "string")), then=text), output_field=CharField())


def _order_q(spec: FieldSpec, condition: Condition, now: dt.datetime) -> Q:
    """An order aggregate as a correlated subquery over the customer's paid orders, read from
    the covering partial index (customer, paid_at, amount): one index probe per candidate
    customer, and no join for the zone (it is the outer row's)."""
    paid = Order.objects.filter(customer_id=OuterRef("pk"), state__in=PAID_STATES).order_by()
    per_customer = paid.values("customer_id")
    if spec.name == "days_since_last":
        last_paid = Subquery(per_customer.annotate(last=Max("paid_at")).values("last"))
        metric: Any = local_days_since(
            # A Subquery is an Expression at run time; the stubs type it apart.
            at=last_paid,  # type: ignore[arg-type]
            now=now,
            tz=customer_timezone(F),
        )
        return expression_q(metric, condition.op, condition.value)
    if spec.name == "total_spent":
        metric = Coalesce(
            Subquery(per_customer.annotate(total=Sum("amount")).values("total")),
            Value(Decimal("0")),
            output_field=DecimalField(),
        )
        return expression_q(metric, condition.op, condition.value)
    if spec.name == "paid_count":
        metric = Coalesce(Subquery(per_customer.annotate(n=Count("*")).values("n")), 0)
        return expression_q(metric, condition.op, condition.value)
    # Paid in the last N local days. A zone-free bound wider than any zone's window (a local
    # day lasts at most 25 hours) lets the partial index (paid_at, customer) list the few
    # customers with a recent order; the exact bound, local midnight N-1 days ago in the
    # customer's zone, is then checked for those customers only.
    since = now - dt.timedelta(days=spec.window_days + 1)
    window_start = local_day_start(
        now=now, days_back=spec.window_days - 1, tz=customer_timezone(OuterRef)
    )
    in_window = per_customer.filter(
        Q(paid_at__gte=since), Q(GreaterThanOrEqual(F("paid_at"), window_start))
    )
    metric = Coalesce(Subquery(in_window.annotate(n=Count("*")).values("n")), 0)
    exact = expression_q(metric, condition.op, condition.value)
    recent = (
        Order.objects.filter(state__in=PAID_STATES, paid_at__gte=since)
        .order_by()
        .values("customer_id")
    )
    # Customers without a recent order have a count of 0: what the condition says of 0 (the
    # chains' own predicate decides, so both back ends agree) settles them without a probe.
    if compile_predicate(condition)(lambda _field: 0):
        return ~Q(pk__in=recent) | exact
    return Q(pk__in=recent) & exact


def condition_q(condition: Condition, *, now: dt.datetime) -> Q:
    spec = field_spec(condition.field)
    if spec.kind == "profile":
        return _profile_q(spec, condition)
    if spec.kind == "attribute":
        return _attribute_q(spec, condition)
    return _order_q(spec, condition, now)


def compile_rule(node: Node, *, now: dt.datetime | None = None) -> Q:
    """The Q selecting a checked rule's customers; `now` fixes "today" (tests, snapshots)."""
    at = now or timezone.now()
    return compile_q(node, lambda condition: condition_q(condition, now=at))

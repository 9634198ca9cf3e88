"""A definition document in, one activity (with its template, chains, steps and benefits) out.

Everything is checked before anything is written, and everything is written in one
transaction, so a document with any problem leaves the database as it was. Problems are
reported together, each with its document path (`chains[1].steps[0].config.prizes[0].weight`).

A template that already exists is reused only when its chains equal the document's: copying
an activity must never rewrite the chains other activities run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator

from activities.engine import registry
from activities.engine.errors import ConfigError, prefixed
from activities.engine.steps import check_step_shape
from activities.models import (
    Activity,
    Benefit,
    Chain,
    ChainStep,
    Channel,
    CodeSource,
    ErrorPolicy,
    StrategyTemplate,
)
from activities.models.activity import ExhaustionPolicy
from activities.services.approvals import record_approval
from activities.services.configuration import (
    EmitEdge,
    find_loop,
    lock_emit_graph,
    loop_error,
    mark_credited_channels,
    stored_emit_edges,
)
from activities.services.lifecycle import schedule_activity
from activities.services.readiness import missing_benefit_error, timezone_errors
from core.errors import InvalidConfiguration
from core.schema_messages import schema_error
from core.timezones import to_utc
from segments.models import Segment

from .coupon_terms import check_coupon
from .exporter import canonical_step, export_chains
from .loading import format_path, plain_tree, refuse
from .schema import document_schema

_SCHEMA_CODES = {
    "required": "required",
    "additionalProperties": "unknown_key",
    "enum": "invalid_choice",
    "type": "invalid_type",
}


@lru_cache(maxsize=1)
def _structure_validator() -> Draft202012Validator:
    return Draft202012Validator(document_schema(processor_configs=False))


def _schema_errors(document: Any) -> list[ConfigError]:
    errors = []
    for error in _structure_validator().iter_errors(document):
        # In words, on the path it concerns (a missing key's error points at that key).
        path, message = schema_error(error)
        errors.append(
            ConfigError(format_path(path), message, _SCHEMA_CODES.get(error.validator, "invalid"))
        )
    return sorted(errors, key=lambda e: e.path)


@dataclass
class _Plan:
    """What the checks worked out, so the writer does not work it out again."""

    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    segment: Segment | None = None
    budget: Decimal | None = None
    values: list[Decimal | None] = field(default_factory=list)
    coupon_terms: list[dict[str, Any]] = field(default_factory=list)
    template: StrategyTemplate | None = None
    channels: set[str] = field(default_factory=set)


def _amount(value: Any, path: str, errors: list[ConfigError]) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        errors.append(ConfigError(path, _("Write an amount such as 5.00."), "invalid_amount"))
        return None
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        errors.append(ConfigError(path, _("Use at most two decimals."), "invalid_amount"))
        return None
    return amount


def _local_time(
    document: dict[str, Any], key: str, errors: list[ConfigError]
) -> dt.datetime | None:
    text = document.get(key)
    if text is None:
        return None
    try:
        wall = dt.datetime.fromisoformat(text)
    except ValueError:
        errors.append(
            ConfigError(
                key, _("%(value)s is not a date and time.") % {"value": text}, "invalid_datetime"
            )
        )
        return None
    try:
        return to_utc(wall, document["timezone"])
    except InvalidConfiguration as error:
        errors.append(ConfigError(key, error.message, error.code))
        return None


def _check_activity_fields(document: dict[str, Any], plan: _Plan) -> list[ConfigError]:
    errors = []
    if Activity.objects.filter(code=document["code"]).exists():
        errors.append(
            ConfigError(
                "code",
                _("An activity %(code)s already exists; give the copy another code.")
                % {"code": document["code"]},
                "activity_exists",
            )
        )
    zone_errors = timezone_errors(document["timezone"])
    errors.extend(zone_errors)
    if not zone_errors:
        plan.starts_at = _local_time(document, "starts_at", errors)
        plan.ends_at = _local_time(document, "ends_at", errors)
        if plan.starts_at and plan.ends_at and plan.starts_at >= plan.ends_at:
            errors.append(
                ConfigError(
                    "ends_at", _("The activity must end after it starts."), "invalid_window"
                )
            )
    if document.get("segment") is not None:
        plan.segment = Segment.objects.filter(code=document["segment"]).first()
        if plan.segment is None:
            errors.append(
                ConfigError(
                    "segment",
                    _("There is no segment %(code)s.") % {"code": document["segment"]},
                    "unknown_segment",
                )
            )
    plan.budget = _amount(document.get("budget"), "budget", errors)
    seen: set[str] = set()
    for index, benefit in enumerate(document["benefits"]):
        if benefit["code"] in seen:
            errors.append(
                ConfigError(
                    f"benefits[{index}].code",
                    _("Benefit %(code)s is listed twice.") % {"code": benefit["code"]},
                    "duplicate_benefit",
                )
            )
        seen.add(benefit["code"])
        plan.values.append(_amount(benefit.get("value"), f"benefits[{index}].value", errors))
        plan.coupon_terms.append(
            check_coupon(
                benefit,
                f"benefits[{index}]",
                None if zone_errors else document["timezone"],
                errors,
            )
        )
    return errors


def _check_chains(document: dict[str, Any], plan: _Plan) -> list[ConfigError]:
    errors: list[ConfigError] = []
    benefit_codes = {benefit["code"] for benefit in document["benefits"]}
    edges: list[tuple[str, str, str]] = []  # (source, target, step path)
    seen: set[str] = set()
    for chain_index, chain in enumerate(document["chains"]):
        channel = chain["channel"]
        plan.channels.add(channel)
        if channel in seen:
            errors.append(
                ConfigError(
                    f"chains[{chain_index}].channel",
                    _("Two chains listen on %(channel)s; a template has one chain per channel.")
                    % {"channel": channel},
                    "duplicate_chain",
                )
            )
        seen.add(channel)
        for step_index, step in enumerate(chain["steps"]):
            path = f"chains[{chain_index}].steps[{step_index}]"
            config = step.get("config", {})
            shape = check_step_shape(
                processor=step["processor"], config=config, when=step.get("when")
            )
            if shape:
                errors.extend(prefixed(shape, path))
                continue
            processor_class = registry.get(step["processor"])
            assert processor_class is not None  # check_step_shape refused unknown processors
            for code in sorted(processor_class.benefit_codes(config) - benefit_codes):
                errors.append(
                    missing_benefit_error(
                        path=f"{path}.config",
                        channel=channel,
                        index=step_index,
                        processor=step["processor"],
                        code=code,
                    )
                )
            for target in sorted(processor_class.emitted_channels(config)):
                plan.channels.add(target)
                edges.append((channel, target, f"{path}.config"))
    graph = stored_emit_edges() + [EmitEdge(source, target) for source, target, _path in edges]
    for source, target, path in edges:
        loop = find_loop(graph, source, target)
        if loop:
            errors.append(loop_error(path, loop))
    return errors


def _canonical_chains(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "channel": chain["channel"],
            "lock": chain.get("lock", True),
            "steps": [
                canonical_step(
                    processor=step["processor"],
                    config=step.get("config"),
                    when=step.get("when"),
                    on_error=step.get("on_error", ErrorPolicy.ABORT),
                )
                for step in chain["steps"]
            ],
        }
        for chain in document["chains"]
    ]


def _check_template(document: dict[str, Any], plan: _Plan) -> list[ConfigError]:
    plan.template = StrategyTemplate.objects.filter(code=document["template"]).first()
    if plan.template is None or export_chains(plan.template) == _canonical_chains(document):
        return []
    return [
        ConfigError(
            "template",
            _(
                "Template %(code)s already exists with other chains. Give the document's "
                "template a new code to create it, or make its chains equal the existing ones "
                "(export an activity that uses it to see them)."
            )
            % {"code": document["template"]},
            "template_conflict",
        )
    ]


def check_definition(*, document: Any) -> list[ConfigError]:
    """Every problem with a definition document, by path; [] when it would import."""
    return _check(plain_tree(document))[0]


def _check(document: Any) -> tuple[list[ConfigError], _Plan]:
    plan = _Plan()
    errors = _schema_errors(document)
    if errors:
        return errors, plan
    errors = _check_activity_fields(document, plan)
    errors.extend(_check_chains(document, plan))
    errors.extend(_check_template(document, plan))
    return errors, plan


def _write_template(document: dict[str, Any], channels: dict[str, Channel]) -> StrategyTemplate:
    gameplay = document.get("gameplay") or {}
    template = StrategyTemplate.objects.create(
        code=document["template"],
        name=document.get("template_name") or document["template"],
        gameplay=gameplay.get("code", ""),
        gameplay_parameters=gameplay.get("parameters", {}),
    )
    for chain_doc in document["chains"]:
        chain = Chain.objects.create(
            template=template,
            channel=channels[chain_doc["channel"]],
            requires_lock=chain_doc.get("lock", True),
        )
        ChainStep.objects.bulk_create(
            ChainStep(
                chain=chain,
                position=position,
                processor=step["processor"],
                config=step.get("config", {}),
                when=step.get("when"),
                on_error=step.get("on_error", ErrorPolicy.ABORT),
            )
            for position, step in enumerate(chain_doc["steps"])
        )
    mark_credited_channels(
        steps=[
            (step["processor"], step.get("config", {}))
            for chain_doc in document["chains"]
            for step in chain_doc["steps"]
        ]
    )
    return template


def _stock(benefit: dict[str, Any], terms: dict[str, Any]) -> int | None:
    # A pool starts empty: its stock is the codes uploaded to it.
    return 0 if terms.get("code_source") == CodeSource.POOL else benefit.get("stock")


def _write(document: dict[str, Any], plan: _Plan) -> Activity:
    channels = {}
    for code in sorted(plan.channels):
        channels[code], _created = Channel.objects.get_or_create(code=code)
    template = plan.template or _write_template(document, channels)
    activity = Activity.objects.create(
        code=document["code"],
        name=document["name"],
        template=template,
        timezone=document["timezone"],
        starts_at=plan.starts_at,
        ends_at=plan.ends_at,
        segment=plan.segment,
        budget_total=plan.budget,
        budget_remaining=plan.budget,
        on_exhausted=document.get("on_exhausted", ExhaustionPolicy.PAUSE),
        coupons_follow_orders=document.get("coupons_follow_orders", True),
    )
    Benefit.objects.bulk_create(
        Benefit(
            activity=activity,
            code=benefit["code"],
            kind=benefit["kind"],
            name=benefit.get("name", ""),
            value=value,
            stock_total=_stock(benefit, terms),
            stock_remaining=_stock(benefit, terms),
            per_customer_limit=benefit.get("per_customer_limit"),
            **terms,
        )
        for benefit, value, terms in zip(
            document["benefits"], plan.values, plan.coupon_terms, strict=True
        )
    )
    return activity


def import_definition(*, document: Any, launch_bypassing_review_by: str = "") -> Activity:
    """Create the activity a document describes (and its template and channels when missing).

    With `launch_bypassing_review_by` (who, and by what means), the activity skips four-eyes
    review: that bypass is recorded as its approval, and it is scheduled in the same
    transaction, and started at once when its window is already open. Raises
    InvalidConfiguration whose details list every problem with its document path; nothing is
    written then.
    """
    document = plain_tree(document)
    try:
        with transaction.atomic():
            # Checked under the emit-graph lock: a concurrent save cannot close a loop with
            # this document's emit steps between the check and the commit.
            lock_emit_graph()
            errors, plan = _check(document)
            if errors:
                raise refuse(_("The activity definition is not valid."), errors)
            activity = _write(document, plan)
            if launch_bypassing_review_by:
                record_approval(activity=activity, bypass=launch_bypassing_review_by)
                activity = schedule_activity(activity=activity)
    except IntegrityError:
        # A concurrent import took the activity or template code between check and write.
        raise refuse(
            _("The activity definition is not valid."),
            [
                ConfigError(
                    "code",
                    _(
                        "Another import created this activity or its template meanwhile; "
                        "import again to see what exists now."
                    ),
                    "import_conflict",
                )
            ],
        ) from None
    return activity

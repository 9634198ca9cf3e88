"""Configuration writes: the one place chains, steps, templates and an activity's own settings
are validated and saved. The admin, the definition importer and the tests all come here.

Caches never serve a stale configuration because every write bumps a version stamp in the same
transaction: `StrategyTemplate.version` for chains and steps, `Activity.config_version` for
benefits, window and budget. Compiled chains and activity configs are cached under those stamps
(activities.engine.cache), and the stamps are read fresh for every event.

A template used by a running activity is frozen: an edit would change a live campaign under the
customers' feet. The operator duplicates the template, edits the copy and points the next
activity (or this one, once paused) at it.
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils.translation import gettext as _

from activities.engine import registry
from activities.engine.errors import ConfigError
from activities.engine.fields import check_chain_field
from activities.models import (
    Activity,
    ActivityState,
    Benefit,
    Chain,
    ChainStep,
    Channel,
    ErrorPolicy,
    Grant,
    StrategyTemplate,
)
from activities.models.channel import channel_code_validator
from core.errors import InvalidConfiguration
from core.rules import RuleError, parse
from segments.models import Segment

if TYPE_CHECKING:
    from activities.engine.processors.base import Processor

# Activities in these states have passed check_activity; edits must keep them valid.
CHECKED_STATES = (ActivityState.SCHEDULED, ActivityState.RUNNING, ActivityState.PAUSED)
CLOSED_STATES = (ActivityState.ENDED, ActivityState.ARCHIVED)
# Any fixed number shared by every session: serialises edits that add emit edges, so two
# concurrent saves cannot each add one half of a cycle.
_EMIT_GRAPH_LOCK = 0x6A6D6974


class TemplateFrozen(InvalidConfiguration):
    code = "template_frozen"


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


# --- errors and paths --------------------------------------------------------------------------


def join_path(prefix: str, path: str) -> str:
    """`config` + `prizes[0].weight` -> `config.prizes[0].weight`; `[2]` joins without a dot."""
    if not path:
        return prefix
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def prefixed(errors: Iterable[ConfigError], prefix: str) -> list[ConfigError]:
    return [ConfigError(join_path(prefix, e.path), e.message, e.code) for e in errors]


def error_details(errors: Iterable[ConfigError]) -> list[dict[str, str]]:
    return [{"path": e.path, "message": e.message, "code": e.code} for e in errors]


def _refuse(message: str, errors: list[ConfigError]) -> InvalidConfiguration:
    return InvalidConfiguration(message, details=error_details(errors))


def _model_errors(
    instance: Any, *, exclude: Iterable[str] = (), unique: bool = True
) -> list[ConfigError]:
    """The model's own validators (lengths, digits, code patterns, constraints)."""
    try:
        instance.full_clean(
            exclude=list(exclude), validate_unique=unique, validate_constraints=unique
        )
    except ValidationError as error:
        return [
            ConfigError("" if field == "__all__" else field, text, message.code or "invalid")
            for field, messages in error.error_dict.items()
            for message in messages
            for text in message.messages
        ]
    return []


# --- the emit graph ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EmitEdge:
    """An emit step: events on `source` make events on `target`."""

    source: str
    target: str


def _emits(processor_class: type[Processor]) -> bool:
    # Imported here: the processors package imports services that import this module.
    from activities.engine.processors.base import Processor

    return processor_class.emitted_channels.__func__ is not Processor.emitted_channels.__func__  # type: ignore[attr-defined]


def emitting_processors() -> list[str]:
    return [cls.key for cls in registry.all_processors() if _emits(cls)]


def stored_emit_edges(
    *, exclude_steps: Iterable[int] = (), exclude_chains: Iterable[int] = ()
) -> list[EmitEdge]:
    """Every emit edge saved in any template: a channel's events run every running activity
    bound to it, whatever its template, so a loop through two templates is still a loop."""
    rows = (
        ChainStep.objects.filter(processor__in=emitting_processors())
        .exclude(pk__in=list(exclude_steps))
        .exclude(chain_id__in=list(exclude_chains))
        .values_list("processor", "config", "chain__channel__code")
    )
    edges: list[EmitEdge] = []
    for key, config, source in rows:
        processor_class = registry.get(key)
        if processor_class is None or processor_class.check_config(config):
            # Written around this module; check_activity refuses to launch it.
            continue
        edges.extend(
            EmitEdge(source, target) for target in processor_class.emitted_channels(config)
        )
    return edges


def find_loop(edges: Iterable[EmitEdge], source: str, target: str) -> list[str] | None:
    """The loop that a new edge source -> target closes, as channel codes, or None."""
    if source == target:
        return [source, target]
    following: dict[str, set[str]] = {}
    for edge in edges:
        following.setdefault(edge.source, set()).add(edge.target)
    came_from: dict[str, str] = {}
    queue = deque([target])
    seen = {target}
    while queue:
        channel = queue.popleft()
        for nxt in sorted(following.get(channel, ())):
            if nxt in seen:
                continue
            came_from[nxt] = channel
            if nxt == source:
                path = [source]
                while path[-1] != target:
                    path.append(came_from[path[-1]])
                return [source, *reversed(path)]
            seen.add(nxt)
            queue.append(nxt)
    return None


def loop_error(path: str, loop: list[str]) -> ConfigError:
    return ConfigError(
        path,
        _(
            "Emitting to %(target)s would make events loop: %(loop)s. Remove one emit step "
            "of the loop first."
        )
        % {"target": loop[1], "loop": " -> ".join(loop)},
        "emit_cycle",
    )


def lock_emit_graph() -> None:
    """Held until the transaction ends by every write that adds emit edges."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EMIT_GRAPH_LOCK])


# --- steps -------------------------------------------------------------------------------------


def check_step_shape(*, processor: Any, config: Any, when: Any) -> list[ConfigError]:
    """Everything about a step that does not depend on the database: processor, config, when."""
    errors: list[ConfigError] = []
    processor_class = registry.get(processor) if isinstance(processor, str) else None
    if processor_class is None:
        errors.append(
            ConfigError(
                "processor",
                _("Unknown processor %(key)r; use one of %(keys)s.")
                % {
                    "key": processor,
                    "keys": ", ".join(cls.key for cls in registry.all_processors()),
                },
                "unknown_processor",
            )
        )
    else:
        errors.extend(prefixed(processor_class.check_config(config), "config"))
    if when is not None:
        try:
            parse(when, check_field=check_chain_field, path="when")
        except RuleError as error:
            errors.append(ConfigError(error.path or "when", error.message, error.code))
    return errors


def emitted_by(*, processor: str, config: Any) -> set[str]:
    """Channels a schema-valid step emits to."""
    processor_class = registry.get(processor)
    return processor_class.emitted_channels(config) if processor_class else set()


def check_step(
    *,
    processor: str,
    config: dict[str, Any],
    when: dict[str, Any] | None,
    chain: Chain | None = None,
    step: ChainStep | None = None,
) -> list[ConfigError]:
    """Every problem with a step, paths relative to the step (`config.prizes[0].weight`,
    `when.all[1].field`, `processor`). With `chain`, emitting is checked for loops over the
    global channel graph; pass the `step` being edited so its old edge does not count."""
    errors = check_step_shape(processor=processor, config=config, when=when)
    if errors or chain is None:
        return errors
    targets = emitted_by(processor=processor, config=config)
    if not targets:
        return errors
    edges = stored_emit_edges(exclude_steps=[step.pk] if step and step.pk else [])
    source = chain.channel.code
    for target in sorted(targets):
        loop = find_loop(edges, source, target)
        if loop:
            errors.append(loop_error("config", loop))
    return errors


def _benefits_missing_for_template(
    *, template: StrategyTemplate, codes: set[str], path: str
) -> list[ConfigError]:
    """Scheduled, running or paused activities passed check_activity; keep them passing."""
    if not codes:
        return []
    errors = []
    activities = Activity.objects.filter(template=template, state__in=CHECKED_STATES)
    for activity in activities.prefetch_related("benefits").order_by("code"):
        have = {benefit.code for benefit in activity.benefits.all()}
        for code in sorted(codes - have):
            errors.append(
                ConfigError(
                    path,
                    _(
                        "Activity %(activity)s (%(state)s) uses this template and has no "
                        "benefit %(code)r; add the benefit to it first."
                    )
                    % {"activity": activity.code, "state": activity.state, "code": code},
                    "unknown_benefit",
                )
            )
    return errors


def _frozen_error(template: StrategyTemplate, running: list[str]) -> TemplateFrozen:
    message = _(
        "Template %(template)s is used by the running activity %(activities)s, so its chains "
        "are frozen. Duplicate the template and edit the copy (or pause the activity first)."
    ) % {"template": template.code, "activities": ", ".join(running)}
    return TemplateFrozen(
        message, details=[{"path": "template", "message": message, "code": "template_frozen"}]
    )


def _lock_editable(template: StrategyTemplate) -> StrategyTemplate:
    """Lock the template row (edits of one template are serialised) and refuse if frozen."""
    locked = StrategyTemplate.objects.select_for_update().get(pk=template.pk)
    running = list(
        Activity.objects.filter(template=locked, state=ActivityState.RUNNING)
        .order_by("code")
        .values_list("code", flat=True)[:5]
    )
    if running:
        raise _frozen_error(locked, running)
    return locked


def _bump_template(template: StrategyTemplate) -> None:
    """New version stamp, in the edit's transaction: the next event compiles the new config.

    Conditional on no running activity, so an activity launched since _lock_editable looked
    still refuses the edit (the whole transaction rolls back)."""
    bumped = (
        StrategyTemplate.objects.filter(pk=template.pk)
        .exclude(activities__state=ActivityState.RUNNING)
        .update(version=F("version") + 1)
    )
    if not bumped:
        running = list(
            Activity.objects.filter(template=template, state=ActivityState.RUNNING).values_list(
                "code", flat=True
            )[:5]
        )
        raise _frozen_error(template, running)
    template.refresh_from_db(fields=["version"])


def _renumber(chain: Chain, ordered_ids: list[int]) -> None:
    steps = {step.pk: step for step in ChainStep.objects.filter(chain=chain)}
    changed = []
    for position, step_id in enumerate(ordered_ids):
        step = steps[step_id]
        if step.position != position:
            step.position = position
            changed.append(step)
    ChainStep.objects.bulk_update(changed, ["position"])


def _ordered_step_ids(chain: Chain) -> list[int]:
    return list(
        ChainStep.objects.filter(chain=chain)
        .order_by("position", "pk")
        .values_list("pk", flat=True)
    )


def save_step(
    *,
    chain: Chain,
    processor: str,
    config: dict[str, Any] | None = None,
    when: dict[str, Any] | None = None,
    on_error: str = ErrorPolicy.ABORT,
    step: ChainStep | None = None,
    position: int | None = None,
) -> ChainStep:
    """Create a step (appended, or inserted at `position`) or update `step`; bumps the
    template version. Raises InvalidConfiguration listing every problem by path."""
    config = {} if config is None else config
    when = when or None
    if step is not None and step.chain_id != chain.pk:
        raise _refuse(
            _("The step belongs to another chain."),
            [ConfigError("chain", _("The step belongs to another chain."), "wrong_chain")],
        )
    with transaction.atomic():
        template = _lock_editable(chain.template)
        if processor in emitting_processors():
            lock_emit_graph()
        errors = check_step(processor=processor, config=config, when=when, chain=chain, step=step)
        if on_error not in ErrorPolicy.values:
            errors.append(
                ConfigError(
                    "on_error",
                    _("Use one of %(choices)s.") % {"choices": ", ".join(ErrorPolicy.values)},
                    "invalid_choice",
                )
            )
        if not errors:
            processor_class = registry.get(processor)
            assert processor_class is not None  # check_step refused unknown processors
            errors.extend(
                _benefits_missing_for_template(
                    template=template,
                    codes=processor_class.benefit_codes(config),
                    path="config",
                )
            )
        if errors:
            raise _refuse(_("The step cannot be saved."), errors)
        others = [pk for pk in _ordered_step_ids(chain) if step is None or pk != step.pk]
        if step is None:
            step = ChainStep.objects.create(
                chain=chain,
                position=len(others),
                processor=processor,
                config=config,
                when=when,
                on_error=on_error,
            )
            position = len(others) if position is None else position
        else:
            step.processor = processor
            step.config = config
            step.when = when
            step.on_error = on_error
            step.save(update_fields=["processor", "config", "when", "on_error"])
        if position is not None:
            # Positions stay 0..n-1 in order, whatever gaps earlier writers left.
            others.insert(max(0, min(position, len(others))), step.pk)
            _renumber(chain, others)
            step.refresh_from_db(fields=["position"])
        _bump_template(template)
    return step


def delete_step(*, step: ChainStep) -> None:
    with transaction.atomic():
        template = _lock_editable(step.chain.template)
        chain = step.chain
        step.delete()
        _renumber(chain, _ordered_step_ids(chain))
        _bump_template(template)


def reorder_steps(*, chain: Chain, step_ids: list[int]) -> None:
    """Put the chain's steps in this order; `step_ids` must name each of its steps once."""
    with transaction.atomic():
        template = _lock_editable(chain.template)
        current = _ordered_step_ids(chain)
        if len(step_ids) != len(set(step_ids)) or set(step_ids) != set(current):
            message = _("List every step of the chain exactly once.")
            raise _refuse(message, [ConfigError("step_ids", message, "invalid_order")])
        _renumber(chain, list(step_ids))
        _bump_template(template)


# --- chains and templates ----------------------------------------------------------------------


def _channel_errors(code: Any, path: str) -> list[ConfigError]:
    if not isinstance(code, str) or not code or len(code) > 100:
        return [ConfigError(path, _("Give a channel code of at most 100 characters."), "invalid")]
    try:
        channel_code_validator(code)
    except ValidationError as error:
        return [ConfigError(path, text, "invalid") for text in error.messages]
    return []


def ensure_channel(*, code: str) -> Channel:
    """The channel with this code, created when missing (a chain may name a new channel)."""
    errors = _channel_errors(code, "channel")
    if errors:
        raise _refuse(_("The channel code is not valid."), errors)
    channel, _created = Channel.objects.get_or_create(code=code)
    return channel


def save_chain(
    *,
    template: StrategyTemplate,
    channel: Channel | str,
    requires_lock: bool = True,
    chain: Chain | None = None,
) -> Chain:
    """Create a chain on `template` or update `chain` (its channel, its lock); bumps the version."""
    if chain is not None and chain.template_id != template.pk:
        message = _("The chain belongs to another template.")
        raise _refuse(message, [ConfigError("template", message, "wrong_template")])
    with transaction.atomic():
        template = _lock_editable(template)
        if isinstance(channel, str):
            channel = ensure_channel(code=channel)
        errors = []
        duplicate = Chain.objects.filter(template=template, channel=channel)
        if chain is not None:
            duplicate = duplicate.exclude(pk=chain.pk)
        if duplicate.exists():
            errors.append(
                ConfigError(
                    "channel",
                    _("Template %(template)s already has a chain on %(channel)s.")
                    % {"template": template.code, "channel": channel.code},
                    "duplicate_chain",
                )
            )
        elif chain is not None and chain.channel_id != channel.pk:
            # Moving a chain moves the source of its emit edges.
            lock_emit_graph()
            edges = stored_emit_edges(exclude_chains=[chain.pk])
            for step in chain.steps.filter(processor__in=emitting_processors()):
                for target in sorted(emitted_by(processor=step.processor, config=step.config)):
                    loop = find_loop(edges, channel.code, target)
                    if loop:
                        errors.append(loop_error("channel", loop))
        if errors:
            raise _refuse(_("The chain cannot be saved."), errors)
        if chain is None:
            chain = Chain.objects.create(
                template=template, channel=channel, requires_lock=requires_lock
            )
        else:
            chain.channel = channel
            chain.requires_lock = requires_lock
            chain.save(update_fields=["channel", "requires_lock"])
        _bump_template(template)
    return chain


def delete_chain(*, chain: Chain) -> None:
    with transaction.atomic():
        template = _lock_editable(chain.template)
        chain.delete()
        _bump_template(template)


def duplicate_template(
    *, template: StrategyTemplate, new_code: str, name: str | None = None
) -> StrategyTemplate:
    """A new, editable copy of a template (its chains and steps), at version 1."""
    copy = StrategyTemplate(
        code=new_code, name=name or template.name, description=template.description
    )
    errors = _model_errors(copy)
    if errors:
        raise _refuse(_("The copy cannot be created."), errors)
    try:
        with transaction.atomic():
            copy.save()
            for chain in template.chains.order_by("pk"):
                new_chain = Chain.objects.create(
                    template=copy, channel_id=chain.channel_id, requires_lock=chain.requires_lock
                )
                ChainStep.objects.bulk_create(
                    ChainStep(
                        chain=new_chain,
                        position=position,
                        processor=step.processor,
                        config=step.config,
                        when=step.when,
                        on_error=step.on_error,
                    )
                    for position, step in enumerate(chain.steps.order_by("position", "pk"))
                )
    except IntegrityError:
        # Another copy with this code committed between the check and the insert.
        message = _("A template with this code already exists.")
        raise _refuse(message, [ConfigError("code", message, "unique")]) from None
    return copy


# --- activities --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_errors(name: Any, path: str = "timezone") -> list[ConfigError]:
    # Checked against the IANA list, never handed to ZoneInfo first: a "name" is also a path.
    if isinstance(name, str) and name in _known_timezones():
        return []
    return [
        ConfigError(
            path,
            _("Unknown timezone %(name)r; use an IANA name such as Asia/Shanghai.")
            % {"name": name},
            "unknown_timezone",
        )
    ]


def window_errors(starts_at: dt.datetime | None, ends_at: dt.datetime | None) -> list[ConfigError]:
    errors = []
    for path, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is None:
            errors.append(
                ConfigError(path, _("Set when the activity starts and ends."), "required")
            )
        elif value.tzinfo is None:
            errors.append(ConfigError(path, _("The time needs a timezone."), "naive_datetime"))
    if not errors and starts_at is not None and ends_at is not None and starts_at >= ends_at:
        errors.append(
            ConfigError("ends_at", _("The activity must end after it starts."), "invalid_window")
        )
    return errors


def missing_benefit_error(
    *, path: str, channel: str, index: int, processor: str, code: str
) -> ConfigError:
    return ConfigError(
        path,
        _(
            "Step %(number)d (%(processor)s) of the %(channel)s chain uses benefit %(code)r, "
            "which the activity does not define."
        )
        % {"number": index + 1, "processor": processor, "channel": channel, "code": code},
        "unknown_benefit",
    )


def check_activity(*, activity: Activity) -> list[ConfigError]:
    """Can this activity run? Its window, timezone, and every step of its template: a known
    processor, a valid config, and each benefit the step names defined on the activity.
    Called before scheduling and launching, and by the importer's helpers."""
    errors = window_errors(activity.starts_at, activity.ends_at)
    errors.extend(timezone_errors(activity.timezone))
    codes = set(activity.benefits.values_list("code", flat=True))
    chains = list(
        activity.template.chains.select_related("channel").prefetch_related("steps").order_by("pk")
    )
    if not chains:
        errors.append(
            ConfigError(
                "template",
                _("Template %(template)s has no chains, so the activity would do nothing.")
                % {"template": activity.template.code},
                "empty_template",
            )
        )
    for chain in chains:
        for index, step in enumerate(chain.steps.all()):
            shape = check_step_shape(processor=step.processor, config=step.config, when=step.when)
            if shape:
                errors.append(
                    ConfigError(
                        "template",
                        _("Step %(number)d of the %(channel)s chain is not valid: %(problem)s")
                        % {
                            "number": index + 1,
                            "channel": chain.channel.code,
                            "problem": f"{shape[0].path}: {shape[0].message}",
                        },
                        shape[0].code,
                    )
                )
                continue
            processor_class = registry.get(step.processor)
            assert processor_class is not None  # check_step_shape refused unknown processors
            for code in sorted(processor_class.benefit_codes(step.config) - codes):
                errors.append(
                    missing_benefit_error(
                        path="benefits",
                        channel=chain.channel.code,
                        index=index,
                        processor=step.processor,
                        code=code,
                    )
                )
    return errors


def _bump_activity(activity: Activity) -> None:
    Activity.objects.filter(pk=activity.pk).update(config_version=F("config_version") + 1)
    activity.refresh_from_db(fields=["config_version"])


def _refuse_if_closed(activity: Activity) -> None:
    if activity.state in CLOSED_STATES:
        message = _("Activity %(code)s has %(state)s; it can no longer be changed.") % {
            "code": activity.code,
            "state": activity.state,
        }
        raise _refuse(message, [ConfigError("", message, "activity_closed")])


def _keep_checked(activity: Activity) -> None:
    """A scheduled, running or paused activity passed check_activity; refuse edits that break it."""
    if activity.state in CHECKED_STATES:
        errors = check_activity(activity=activity)
        if errors:
            raise _refuse(_("The change would leave the activity unable to run."), errors)


def _issued(benefit: Benefit) -> int:
    return Grant.objects.filter(benefit=benefit).aggregate(total=Sum("quantity"))["total"] or 0


def save_benefit(
    *,
    activity: Activity,
    code: str,
    kind: str,
    name: str = "",
    value: Decimal | None = None,
    stock_total: int | None = None,
    per_customer_limit: int | None = None,
    benefit: Benefit | None = None,
) -> Benefit:
    """Create or update a benefit of the activity; bumps the activity's config version.

    Stock moves by a conditional UPDATE (granted + remaining == stock always holds): lowering
    it below what was already granted is refused. A benefit that has grants keeps its code and
    kind (limits and balances are counted by code)."""
    if benefit is not None and benefit.activity_id != activity.pk:
        message = _("The benefit belongs to another activity.")
        raise _refuse(message, [ConfigError("activity", message, "wrong_activity")])
    with transaction.atomic():
        activity = Activity.objects.select_for_update().get(pk=activity.pk)
        _refuse_if_closed(activity)
        old = Benefit.objects.select_for_update().get(pk=benefit.pk) if benefit else None
        candidate = Benefit(
            pk=old.pk if old else None,
            activity=activity,
            code=code,
            kind=kind,
            name=name,
            value=value,
            stock_total=stock_total,
            stock_remaining=stock_total,
            per_customer_limit=per_customer_limit,
        )
        errors = _model_errors(candidate, exclude=["stock_remaining"], unique=False)
        taken = Benefit.objects.filter(activity=activity, code=code)
        if old is not None:
            taken = taken.exclude(pk=old.pk)
        if taken.exists():
            errors.append(
                ConfigError(
                    "code",
                    _("The activity already has a benefit %(code)r.") % {"code": code},
                    "duplicate_code",
                )
            )
        renamed = old is not None and (code != old.code or kind != old.kind)
        if renamed and Grant.objects.filter(benefit=old).exists():
            errors.append(
                ConfigError(
                    "kind" if old is not None and code == old.code else "code",
                    _("This benefit has been granted; its code and kind can no longer change."),
                    "benefit_in_use",
                )
            )
        if errors:
            raise _refuse(_("The benefit cannot be saved."), errors)
        if old is None:
            candidate.save()
            benefit = candidate
        else:
            assert benefit is not None
            _move_stock(activity=activity, old=old, new_total=stock_total)
            Benefit.objects.filter(pk=old.pk).update(
                code=code,
                kind=kind,
                name=name,
                value=value,
                per_customer_limit=per_customer_limit,
            )
            benefit.refresh_from_db()
        _keep_checked(activity)
        _bump_activity(activity)
    return benefit


def _move_stock(*, activity: Activity, old: Benefit, new_total: int | None) -> None:
    if old.stock_total == new_total:
        return
    too_low = ConfigError(
        "stock_total",
        _("More than that has already been granted."),
        "stock_below_granted",
    )
    if old.stock_total is not None and new_total is not None:
        delta = new_total - old.stock_total
        moved = Benefit.objects.filter(pk=old.pk, stock_remaining__gte=-delta).update(
            stock_total=new_total, stock_remaining=F("stock_remaining") + delta
        )
        if not moved:
            raise _refuse(_("The benefit cannot be saved."), [too_low])
        return
    if activity.state == ActivityState.RUNNING:
        # Unlimited stock is never counted, so switching needs a count no run is changing.
        message = _("Pause the activity before switching between limited and unlimited stock.")
        raise _refuse(message, [ConfigError("stock_total", message, "activity_running")])
    if new_total is None:
        Benefit.objects.filter(pk=old.pk).update(stock_total=None, stock_remaining=None)
        return
    issued = _issued(old)
    if issued > new_total:
        raise _refuse(_("The benefit cannot be saved."), [too_low])
    Benefit.objects.filter(pk=old.pk).update(
        stock_total=new_total, stock_remaining=new_total - issued
    )


def delete_benefit(*, benefit: Benefit) -> None:
    with transaction.atomic():
        activity = Activity.objects.select_for_update().get(pk=benefit.activity_id)
        _refuse_if_closed(activity)
        if Grant.objects.filter(benefit=benefit).exists():
            message = _("This benefit has been granted; it cannot be deleted.")
            raise _refuse(message, [ConfigError("", message, "benefit_in_use")])
        benefit.delete()
        _keep_checked(activity)
        _bump_activity(activity)


def update_activity(
    *,
    activity: Activity,
    name: str | _Unset = UNSET,
    template: StrategyTemplate | _Unset = UNSET,
    timezone: str | _Unset = UNSET,
    starts_at: dt.datetime | _Unset | None = UNSET,
    ends_at: dt.datetime | _Unset | None = UNSET,
    segment: Segment | _Unset | None = UNSET,
    budget_total: Decimal | _Unset | None = UNSET,
    on_exhausted: str | _Unset = UNSET,
) -> Activity:
    """Change an activity's own settings (only the arguments given); bumps its config version.

    The template and timezone change only while the activity is a draft. The window of a
    scheduled, running or paused activity moves through lifecycle.reschedule_activity, which
    moves its beat tasks too (and refuses moving the start of a started activity). The budget
    may change at any time by a conditional UPDATE that never goes below what was spent.
    """
    changes = {
        field: value
        for field, value in {
            "name": name,
            "template": template,
            "timezone": timezone,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "segment": segment,
            "on_exhausted": on_exhausted,
        }.items()
        if value is not UNSET
    }
    with transaction.atomic():
        activity = Activity.objects.select_for_update().get(pk=activity.pk)
        _refuse_if_closed(activity)
        errors: list[ConfigError] = []
        if activity.state != ActivityState.DRAFT:
            for field in ("template", "timezone"):
                if field in changes and changes[field] != getattr(activity, field):
                    errors.append(
                        ConfigError(
                            field,
                            _(
                                "The activity is %(state)s; its template and timezone change "
                                "only while it is a draft (unschedule it first)."
                            )
                            % {"state": activity.state},
                            "activity_not_draft",
                        )
                    )
        if "timezone" in changes:
            errors.extend(timezone_errors(changes["timezone"]))
        window = {
            field: changes.pop(field, getattr(activity, field))
            for field in ("starts_at", "ends_at")
        }
        for field, value in window.items():
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                errors.append(ConfigError(field, _("The time needs a timezone."), "naive_datetime"))
        if not errors and None not in window.values() and window["starts_at"] >= window["ends_at"]:
            errors.append(
                ConfigError(
                    "ends_at", _("The activity must end after it starts."), "invalid_window"
                )
            )
        if errors:
            raise _refuse(_("The activity cannot be changed."), errors)
        moved = any(window[field] != getattr(activity, field) for field in window)
        if moved and activity.state == ActivityState.DRAFT:
            changes.update(window)
        elif moved:
            from activities.services.lifecycle import reschedule_activity

            activity = reschedule_activity(activity=activity, **window)
        for field, value in changes.items():
            setattr(activity, field, value)
        errors = _model_errors(activity, exclude=["budget_total", "budget_remaining", "state"])
        if errors:
            raise _refuse(_("The activity cannot be changed."), errors)
        if changes:
            activity.save(update_fields=[*changes, "updated_at"])
        if budget_total is not UNSET:
            _move_budget(activity=activity, new_total=budget_total)
        _keep_checked(activity)
        _bump_activity(activity)
    return activity


def _move_budget(*, activity: Activity, new_total: Decimal | None) -> None:
    if activity.budget_total == new_total:
        return
    if new_total is not None:
        try:
            Activity._meta.get_field("budget_total").clean(new_total, activity)
        except ValidationError as error:
            raise _refuse(
                _("The activity cannot be changed."),
                [
                    ConfigError("budget_total", text, error.code or "invalid")
                    for text in error.messages
                ],
            ) from None
        if new_total < 0:
            message = _("The budget cannot be negative.")
            raise _refuse(message, [ConfigError("budget_total", message, "min_value")])
    too_low = ConfigError(
        "budget_total", _("More than that has already been spent."), "budget_below_spent"
    )
    if activity.budget_total is not None and new_total is not None:
        delta = new_total - activity.budget_total
        moved = Activity.objects.filter(pk=activity.pk, budget_remaining__gte=-delta).update(
            budget_total=new_total, budget_remaining=F("budget_remaining") + delta
        )
        if not moved:
            raise _refuse(_("The activity cannot be changed."), [too_low])
    elif activity.state == ActivityState.RUNNING:
        message = _("Pause the activity before adding or removing its budget.")
        raise _refuse(message, [ConfigError("budget_total", message, "activity_running")])
    elif new_total is None:
        Activity.objects.filter(pk=activity.pk).update(budget_total=None, budget_remaining=None)
    else:
        spent = Grant.objects.filter(activity=activity).aggregate(total=Sum("value"))["total"] or 0
        if spent > new_total:
            raise _refuse(_("The activity cannot be changed."), [too_low])
        Activity.objects.filter(pk=activity.pk).update(
            budget_total=new_total, budget_remaining=new_total - spent
        )
    activity.refresh_from_db(fields=["budget_total", "budget_remaining"])

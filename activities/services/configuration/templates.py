"""A template's chains and their steps: checked, saved, reordered, duplicated.

Every write locks the template row and bumps `StrategyTemplate.version` in its transaction, so
the next event compiles the new chains. A template used by a running activity is frozen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from activities.engine import registry
from activities.engine.errors import ConfigError
from activities.engine.steps import check_step_shape
from activities.models import (
    Activity,
    ActivityState,
    Chain,
    ChainStep,
    Channel,
    ErrorPolicy,
    StrategyTemplate,
)
from activities.models.channel import channel_code_validator
from activities.services.readiness import CHECKED_STATES

from .emit_graph import (
    emitted_by,
    emitting_processors,
    find_loop,
    lock_emit_graph,
    loop_error,
    stored_emit_edges,
)
from .errors import TemplateFrozen, model_errors, refuse


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
        raise refuse(
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
            raise refuse(_("The step cannot be saved."), errors)
        mark_credited_channels(steps=[(processor, config)])
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
            raise refuse(message, [ConfigError("step_ids", message, "invalid_order")])
        _renumber(chain, list(step_ids))
        _bump_template(template)


def _channel_errors(code: Any, path: str) -> list[ConfigError]:
    if not isinstance(code, str) or not code or len(code) > 100:
        return [ConfigError(path, _("Give a channel code of at most 100 characters."), "invalid")]
    try:
        channel_code_validator(code)
    except ValidationError as error:
        return [ConfigError(path, text, "invalid") for text in error.messages]
    return []


def mark_credited_channels(*, steps: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Channels these (processor, config) steps fire for other customers become fired by
    Gambit only: the storefront could otherwise claim a team's or a helper's reward itself."""
    credited: set[str] = set()
    for processor, config in steps:
        processor_class = registry.get(processor)
        if processor_class is not None:
            credited |= processor_class.credited_channels(config)
    for code in sorted(credited):
        ensure_channel(code=code)
    Channel.objects.filter(code__in=credited, internal=False).update(internal=True)


def ensure_channel(*, code: str) -> Channel:
    """The channel with this code, created when missing (a chain may name a new channel)."""
    errors = _channel_errors(code, "channel")
    if errors:
        raise refuse(_("The channel code is not valid."), errors)
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
        raise refuse(message, [ConfigError("template", message, "wrong_template")])
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
            raise refuse(_("The chain cannot be saved."), errors)
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
    errors = model_errors(copy)
    if errors:
        raise refuse(_("The copy cannot be created."), errors)
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
        raise refuse(message, [ConfigError("code", message, "unique")]) from None
    return copy

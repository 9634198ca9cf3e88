from typing import Any

from django.utils.translation import gettext_lazy as _

from activities.engine.context import RunContext
from activities.engine.errors import ConfigError
from activities.engine.registry import register
from activities.services import task_progress

from .base import Processor

_task_key = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"}


@register
class TaskProgress(Processor):
    """Count one step toward a task's target; say when the task, or all tasks, just got done."""

    key = "task_progress"
    label = _("Task progress")
    description = _(
        "Counts the event toward task `task` up to `target` (put the task's condition on the "
        "step's `when`). Sets vars.task_<task> (the count), vars.task_<task>_done (true only "
        "on the event that reached the target) and vars.tasks_all_done (true only on the event "
        "that completed the last task of `all`, a map of every task to its target)."
    )
    config_schema = {
        "type": "object",
        "properties": {
            "task": _task_key,
            "target": {"type": "integer", "minimum": 1, "maximum": 100_000},
            "all": {
                "type": "object",
                "propertyNames": _task_key,
                "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 100_000},
            },
        },
        "required": ["task", "target"],
        "additionalProperties": False,
    }

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> list[ConfigError]:
        group = config.get("all")
        if group is not None and group.get(config["task"]) != config["target"]:
            return [
                ConfigError(
                    "all",
                    "`all` must list this task with the same target.",
                    "task_not_in_group",
                )
            ]
        return []

    def process(self, ctx: RunContext) -> None:
        task = self.config["task"]
        target = self.config["target"]
        count = task_progress.advance(
            activity_id=ctx.activity.id, customer_id=ctx.customer.pk, task=task, target=target
        )
        done_now = count == target
        ctx.vars[f"task_{task}"] = target if count is None else count
        ctx.vars[f"task_{task}_done"] = done_now
        group = self.config.get("all")
        # Several tasks may share a channel: a later task's step must not clear the flag an
        # earlier one set in this run.
        ctx.vars.setdefault("tasks_all_done", False)
        if done_now and group:
            # Runs of one customer hold the participation lock (the chain's `lock`), so no other
            # task of theirs completes between this count and this read.
            reached = task_progress.counts(
                activity_id=ctx.activity.id, customer_id=ctx.customer.pk, tasks=sorted(group)
            )
            if all(reached[name] >= group[name] for name in group):
                ctx.vars["tasks_all_done"] = True

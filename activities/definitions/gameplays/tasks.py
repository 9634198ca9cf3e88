"""`tasks`: a list of tasks (channel + condition + target count), a reward per task and one
for completing them all."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from activities.engine.errors import ConfigError
from activities.engine.fields import check_chain_field
from activities.services import task_progress
from core.rules import RuleError

from .base import CHANNEL, Gameplay, Parameters, benefit_param, register

TASK_KEY = "^[a-z][a-z0-9_]{0,39}$"
# The comparisons a task condition offers, in the operator's words.
OPERATOR_LABELS = {
    "eq": gettext_lazy("equals"),
    "ne": gettext_lazy("does not equal"),
    "gt": gettext_lazy("greater than"),
    "gte": gettext_lazy("at least"),
    "lt": gettext_lazy("less than"),
    "lte": gettext_lazy("at most"),
    "contains": gettext_lazy("contains"),
}

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tasks": {
            "type": "array",
            "minItems": 1,
            "maxItems": 10,
            "title": gettext_lazy("Tasks"),
            "description": gettext_lazy(
                "Each task counts the events of its channel that meet its condition, up to "
                "the target."
            ),
            "default": [
                {
                    "key": "view",
                    "channel": "product.viewed",
                    "field": None,
                    "op": None,
                    "value": None,
                    "target": 3,
                    "reward": "points",
                    "quantity": 5,
                },
                {
                    "key": "share",
                    "channel": "product.shared",
                    "field": None,
                    "op": None,
                    "value": None,
                    "target": 1,
                    "reward": "points",
                    "quantity": 5,
                },
                {
                    "key": "pay",
                    "channel": "order.paid",
                    "field": "event.amount",
                    "op": "gte",
                    "value": 50,
                    "target": 1,
                    "reward": "points",
                    "quantity": 20,
                },
            ],
            "items": {
                "type": "object",
                "properties": {
                    "key": {
                        "type": "string",
                        "pattern": TASK_KEY,
                        "title": gettext_lazy("Task id"),
                        "description": gettext_lazy("Lower-case letters, digits and _."),
                    },
                    "channel": {
                        "type": "string",
                        "x-kind": CHANNEL,
                        "pattern": r"^[a-z0-9_]+(\.[a-z0-9_]+)*$",
                        "title": gettext_lazy("Event"),
                    },
                    "field": {
                        "type": ["string", "null"],
                        "title": gettext_lazy("Only when field"),
                        "description": gettext_lazy("e.g. event.amount; empty counts every event."),
                    },
                    "op": {
                        "enum": [*OPERATOR_LABELS, None],
                        "x-choices": OPERATOR_LABELS,
                        "title": gettext_lazy("Operator"),
                    },
                    "value": {
                        "type": ["number", "string", "boolean", "null"],
                        "title": gettext_lazy("Value"),
                    },
                    "target": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 100_000,
                        "default": 1,
                        "title": gettext_lazy("Target"),
                        "x-unit": gettext_lazy("times"),
                    },
                    "reward": benefit_param(title=gettext_lazy("Reward"), optional=True),
                    "quantity": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 1_000_000,
                        "default": 1,
                        "title": gettext_lazy("Quantity"),
                    },
                },
                "required": ["key", "channel", "target", "quantity"],
                "additionalProperties": False,
            },
        },
        "all_reward": {
            **benefit_param(
                title=gettext_lazy("Reward for completing all"),
                description=gettext_lazy("Granted once, when the last task is completed."),
                optional=True,
            ),
            "default": "coupon-all",
        },
        "all_quantity": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1_000_000,
            "default": 1,
            "title": gettext_lazy("Quantity for completing all"),
        },
    },
    "required": ["tasks", "all_quantity"],
    "additionalProperties": False,
}


def _validate(params: Parameters) -> list[ConfigError]:
    errors = []
    seen: set[str] = set()
    for index, task in enumerate(params["tasks"]):
        path = f"tasks[{index}]"
        if task["key"] in seen:
            errors.append(
                ConfigError(
                    f"{path}.key",
                    _("Task id %(key)s is used twice.") % {"key": task["key"]},
                    "duplicate_task",
                )
            )
        seen.add(task["key"])
        if task.get("field"):
            if not task["field"].startswith("event."):
                errors.append(
                    ConfigError(
                        f"{path}.field",
                        _("Name a field of the event, such as event.amount."),
                        "unknown_field",
                    )
                )
            else:
                try:
                    check_chain_field(task["field"])
                except RuleError:
                    errors.append(
                        ConfigError(f"{path}.field", _("Enter a valid value."), "unknown_field")
                    )
            if not task.get("op"):
                errors.append(
                    ConfigError(f"{path}.op", _("Pick how to compare the field."), "required")
                )
        elif task.get("op"):
            errors.append(ConfigError(f"{path}.field", _("Name the field to compare."), "required"))
    return errors


def _build(params: Parameters) -> list[dict[str, Any]]:
    tasks = params["tasks"]
    group = {task["key"]: task["target"] for task in tasks} if params.get("all_reward") else None
    chains: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        steps = chains.setdefault(task["channel"], [])
        config: dict[str, Any] = {"task": task["key"], "target": task["target"]}
        if group:
            config["all"] = group
        step: dict[str, Any] = {"processor": "task_progress", "config": config}
        if task.get("field"):
            step["when"] = {
                "all": [{"field": task["field"], "op": task["op"], "value": task.get("value")}]
            }
        steps.append(step)
        if task.get("reward"):
            steps.append(
                {
                    "processor": "grant_benefit",
                    "config": {"benefit": task["reward"], "quantity": task["quantity"]},
                    "when": {
                        "all": [
                            {"field": f"vars.task_{task['key']}_done", "op": "eq", "value": True}
                        ]
                    },
                }
            )
    for steps in chains.values():
        if group:
            steps.append(
                {
                    "processor": "grant_benefit",
                    "config": {"benefit": params["all_reward"], "quantity": params["all_quantity"]},
                    "when": {"all": [{"field": "vars.tasks_all_done", "op": "eq", "value": True}]},
                }
            )
        steps.append({"processor": "build_result"})
    return [{"channel": channel, "lock": True, "steps": steps} for channel, steps in chains.items()]


def _progress(*, activity: Any, customer: Any) -> dict[str, Any]:
    tasks = activity.template.gameplay_parameters.get("tasks", [])
    reached = task_progress.counts(
        activity_id=activity.pk, customer_id=customer.pk, tasks=[task["key"] for task in tasks]
    )
    rows = [
        {
            "key": task["key"],
            "channel": task["channel"],
            "target": task["target"],
            "count": reached[task["key"]],
            "done": reached[task["key"]] >= task["target"],
        }
        for task in tasks
    ]
    done = sum(row["done"] for row in rows)
    return {"tasks": {"items": rows, "done": done, "left": len(rows) - done}}


GAMEPLAY = register(
    Gameplay(
        code="tasks",
        name=gettext_lazy("Tasks"),
        description=gettext_lazy(
            "A list of tasks, each counted to its target; a reward per task and one for all."
        ),
        preview=gettext_lazy("View 3 products, share once, pay an order of 50: points for each."),
        parameters=PARAMETERS,
        build=_build,
        validate=_validate,
        default_benefits=[
            {"code": "points", "kind": "points", "name": gettext_lazy("Task points")},
            {
                "code": "coupon-all",
                "kind": "coupon",
                "name": gettext_lazy("All tasks done"),
                "value": "10.00",
            },
        ],
        progress=_progress,
    )
)

"""The activities tasks by name, and how services start them (see `core.enqueue`).

Services start work only through here: `activities.tasks` and `activities.experiments.tasks`
import the services to run them, so a service importing either would close a cycle. The names
are the tasks' registered names (each task is declared with its constant); beat's rows and
`CELERY_TASK_ROUTES` store the same strings.

A send that fails is logged and answered with False, never raised: the caller's transaction has
committed by then. Events, launches, exhaustion checks and experiment steps have rows that a
sweep sends again (the event outbox, the webhook call outbox, the lifecycle and experiment
catch-ups).
"""

from __future__ import annotations

from typing import Any

from core import enqueue

RUN_EVENT = "activities.tasks.run_event_task"
CALL_WEBHOOK = "activities.tasks.call_webhook_task"
LAUNCH_ACTIVITY = "activities.tasks.launch_activity_task"
END_ACTIVITY = "activities.tasks.end_activity_task"
EXHAUST_ACTIVITY = "activities.tasks.exhaust_activity_task"
LAUNCH_TEST = "activities.experiments.tasks.launch_test_task"
DECIDE_EXPERIMENT = "activities.experiments.tasks.decide_experiment_task"
ROLL_OUT = "activities.experiments.tasks.roll_out_task"
CATCH_UP_EXPERIMENTS = "activities.experiments.tasks.catch_up_experiments_task"
ISSUE_BENEFIT = "activities.tasks.issue_benefit_task"

# The storefront waits on this send: a broker blip is retried briefly before the event is
# left to the sweeper.
_EVENT_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}


def run_event(*, event_id: Any) -> bool:
    return enqueue.send(
        RUN_EVENT, args=(str(event_id),), retry=True, retry_policy=_EVENT_RETRY_POLICY
    )


def run_event_on_commit(*, event_id: Any) -> None:
    enqueue.on_commit(RUN_EVENT, args=(str(event_id),))


def call_webhook(*, call_id: int) -> bool:
    return enqueue.send(CALL_WEBHOOK, args=(call_id,))


def call_webhook_on_commit(*, call_id: int) -> None:
    enqueue.on_commit(CALL_WEBHOOK, args=(call_id,))


def exhaust_activity(*, activity_id: int) -> bool:
    return enqueue.send(EXHAUST_ACTIVITY, args=(activity_id,))


def launch_test_on_commit(*, experiment_id: int) -> None:
    enqueue.on_commit(LAUNCH_TEST, args=(experiment_id,))


def roll_out_on_commit(*, experiment_id: int) -> None:
    enqueue.on_commit(ROLL_OUT, args=(experiment_id,))


def issue_benefit(*, issue_id: int) -> bool:
    return enqueue.send(ISSUE_BENEFIT, args=(issue_id,))


def issue_benefit_on_commit(*, issue_id: int) -> None:
    enqueue.on_commit(ISSUE_BENEFIT, args=(issue_id,))

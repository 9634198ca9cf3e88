"""Celery tasks of broadcast experiments: thin, idempotent, taking ids.

The app registers them at start-up (`ActivitiesConfig.ready`): Celery's autodiscovery looks
only at `activities.tasks`.
"""

from celery import shared_task
from django.db import DatabaseError

from activities import enqueue
from activities.experiments import broadcasts

_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


@shared_task(name=enqueue.LAUNCH_TEST, **_TASK)
def launch_test_task(experiment_id: int) -> bool:
    return broadcasts.launch_test(experiment_id=experiment_id)


@shared_task(name=enqueue.DECIDE_EXPERIMENT, **_TASK)
def decide_experiment_task(experiment_id: int) -> bool:
    if broadcasts.decide_if_due(experiment_id=experiment_id):
        broadcasts.roll_out(experiment_id=experiment_id)
        return True
    return False


@shared_task(name=enqueue.ROLL_OUT, **_TASK)
def roll_out_task(experiment_id: int) -> bool:
    return broadcasts.roll_out(experiment_id=experiment_id)


@shared_task(
    name=enqueue.CATCH_UP_EXPERIMENTS,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def catch_up_experiments_task() -> dict[str, int]:
    return broadcasts.catch_up()

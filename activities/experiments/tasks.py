"""Celery tasks of broadcast experiments: thin, idempotent, taking ids.

Imported by `activities.experiments` (which the `split` processor imports when the app is
ready), so every worker knows them: Celery's autodiscovery looks only at `<app>.tasks`.
"""

from celery import shared_task
from django.db import DatabaseError

_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


@shared_task(**_TASK)
def launch_test_task(experiment_id: int) -> bool:
    from activities.experiments import broadcasts

    return broadcasts.launch_test(experiment_id=experiment_id)


@shared_task(**_TASK)
def decide_experiment_task(experiment_id: int) -> bool:
    from activities.experiments import broadcasts

    if broadcasts.decide_if_due(experiment_id=experiment_id):
        broadcasts.roll_out(experiment_id=experiment_id)
        return True
    return False


@shared_task(**_TASK)
def roll_out_task(experiment_id: int) -> bool:
    from activities.experiments import broadcasts

    return broadcasts.roll_out(experiment_id=experiment_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def catch_up_experiments_task() -> dict[str, int]:
    from activities.experiments import broadcasts

    return broadcasts.catch_up()

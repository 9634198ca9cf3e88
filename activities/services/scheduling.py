"""An activity's launch and end as django-celery-beat one-off clocked tasks.

The beat rows are derived from the activity's state and window by `sync_activity_schedule`,
called by every lifecycle service under the activity's row lock and in its transaction, so the
rows and the state commit together. Each activity has at most one launch and one end task,
named after its id (PeriodicTask.name is unique), each with its own ClockedSchedule.

Beat can fire a one-off twice (celery-beat #828, or two beats running) and can miss one while it
is down; the tasks are idempotent and `catch_up` covers what was missed.
"""

from __future__ import annotations

import datetime as dt
import json

from django.db import transaction
from django_celery_beat.models import ClockedSchedule, PeriodicTask

from activities import enqueue
from activities.models import Activity, ActivityState


def launch_task_name(activity_id: int) -> str:
    return f"activity {activity_id}: launch"


def end_task_name(activity_id: int) -> str:
    return f"activity {activity_id}: end"


def sync_activity_schedule(*, activity: Activity, now: dt.datetime) -> None:
    """Make beat's rows for the activity match its state and window (call it under the lock)."""
    assert transaction.get_connection().in_atomic_block
    if (
        activity.state == ActivityState.SCHEDULED
        and activity.starts_at is not None
        and activity.starts_at > now
    ):
        _plan(launch_task_name(activity.pk), enqueue.LAUNCH_ACTIVITY, activity, activity.starts_at)
    else:
        _drop(launch_task_name(activity.pk))
    if activity.ends_at is not None and activity.state in (
        ActivityState.SCHEDULED,
        ActivityState.RUNNING,
        ActivityState.PAUSED,
    ):
        _plan(end_task_name(activity.pk), enqueue.END_ACTIVITY, activity, activity.ends_at)
    else:
        _drop(end_task_name(activity.pk))


def planned_tasks(*, activity_id: int) -> dict[str, PeriodicTask]:
    """The activity's beat tasks by kind ("launch", "end"), for the admin and for tests."""
    names = {launch_task_name(activity_id): "launch", end_task_name(activity_id): "end"}
    return {
        names[task.name]: task
        for task in PeriodicTask.objects.select_related("clocked").filter(name__in=names)
    }


def _plan(name: str, task: str, activity: Activity, at: dt.datetime) -> None:
    periodic = PeriodicTask.objects.select_related("clocked").filter(name=name).first()
    if periodic is None or periodic.clocked is None:
        if periodic is not None:
            periodic.delete()
        PeriodicTask.objects.create(
            name=name,
            task=task,
            clocked=ClockedSchedule.objects.create(clocked_time=at),
            one_off=True,
            args=json.dumps([activity.pk]),
            description=activity.code,
        )
        return
    moved = periodic.clocked.clocked_time != at
    if moved:
        periodic.clocked.clocked_time = at
        periodic.clocked.save(update_fields=["clocked_time"])
    if moved or not periodic.enabled:
        # Saving the task (not just its clock) is what tells a running beat to reload.
        periodic.enabled = True
        periodic.total_run_count = 0
        periodic.last_run_at = None
        periodic.save()


def _drop(name: str) -> None:
    periodic = PeriodicTask.objects.filter(name=name).first()
    if periodic is None:
        return
    clocked_id = periodic.clocked_id
    # Model delete (not a queryset delete): it is what tells a running beat to reload.
    periodic.delete()
    if clocked_id is not None:
        ClockedSchedule.objects.filter(pk=clocked_id, periodictask=None).delete()

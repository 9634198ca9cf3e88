"""A broadcast's beat rows (django-celery-beat), derived from its state by `sync_schedule`.

- once, scheduled: a one-off ClockedSchedule at `send_at` running `launch_broadcast_task`;
- recurring, scheduled: a CrontabSchedule in the broadcast's own timezone running
  `fire_standing_broadcast_task`;
- birthday, scheduled: a CrontabSchedule every BIRTHDAY_TICK minutes (UTC); each firing covers
  the customers whose local send hour fell since the previous one;
- anything else: no beat row.

Called under the broadcast's row lock, in its transaction, so the rows and the state commit
together. Beat may fire twice (celery-beat #828, two beats): the tasks are idempotent.
"""

from __future__ import annotations

import json

from celery.schedules import crontab
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from notifications.enqueue import FIRE_STANDING_BROADCAST, LAUNCH_BROADCAST
from notifications.models import Broadcast, BroadcastKind, BroadcastState


def task_name(broadcast_id: int) -> str:
    return f"broadcast {broadcast_id}"


def parse_cron(expression: str) -> dict[str, str]:
    """'m h dom mon dow' as CrontabSchedule fields; raises ValueError naming the problem."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(
            _("A crontab has five fields: minute hour day-of-month month day-of-week.")
        )
    fields = dict(
        zip(("minute", "hour", "day_of_month", "month_of_year", "day_of_week"), parts, strict=True)
    )
    crontab(**fields)  # celery's own parser: raises ValueError on a bad field
    return fields


def _crontab_fields(broadcast: Broadcast) -> dict[str, str]:
    if broadcast.kind == BroadcastKind.BIRTHDAY:
        tick = settings.NOTIFICATIONS_BIRTHDAY_TICK_MINUTES
        return {
            "minute": f"*/{tick}",
            "hour": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "day_of_week": "*",
            "timezone": "UTC",
        }
    return {**parse_cron(broadcast.cron), "timezone": broadcast.timezone}


def sync_schedule(*, broadcast: Broadcast) -> None:
    assert transaction.get_connection().in_atomic_block
    name = task_name(broadcast.pk)
    existing = PeriodicTask.objects.select_related("clocked", "crontab").filter(name=name).first()
    if broadcast.state != BroadcastState.SCHEDULED:
        _drop(existing)
        return
    if broadcast.kind == BroadcastKind.ONE_OFF:
        if existing is not None and existing.clocked is not None:
            if existing.clocked.clocked_time != broadcast.send_at or not existing.enabled:
                existing.clocked.clocked_time = broadcast.send_at
                existing.clocked.save(update_fields=["clocked_time"])
                existing.enabled = True
                existing.total_run_count = 0
                existing.last_run_at = None
                existing.save()  # saving the task is what makes a running beat reload
            return
        _drop(existing)
        PeriodicTask.objects.create(
            name=name,
            task=LAUNCH_BROADCAST,
            clocked=ClockedSchedule.objects.create(clocked_time=broadcast.send_at),
            one_off=True,
            args=json.dumps([broadcast.pk]),
            description=broadcast.name[:200],
        )
        return
    fields = _crontab_fields(broadcast)
    schedule, _created = CrontabSchedule.objects.get_or_create(**fields)
    if existing is not None and existing.crontab_id == schedule.pk and existing.enabled:
        return
    _drop(existing)
    PeriodicTask.objects.create(
        name=name,
        task=FIRE_STANDING_BROADCAST,
        crontab=schedule,
        args=json.dumps([broadcast.pk]),
        description=broadcast.name[:200],
    )


def _drop(task: PeriodicTask | None) -> None:
    if task is None:
        return
    clocked_id = task.clocked_id
    task.delete()  # a model delete (not a queryset delete) is what makes a running beat reload
    if clocked_id is not None:
        ClockedSchedule.objects.filter(pk=clocked_id, periodictask=None).delete()


def periodic_task(*, broadcast_id: int) -> PeriodicTask | None:
    return (
        PeriodicTask.objects.select_related("clocked", "crontab")
        .filter(name=task_name(broadcast_id))
        .first()
    )

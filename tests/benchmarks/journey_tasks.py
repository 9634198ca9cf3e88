"""The baseline of bench_journeys.py: each waiting run resumed by a Celery task of its own,
sent with a countdown to its due time (what the sweep replaces). The resume itself is the
same code as the sweep's; only the claiming differs (one row per task instead of batches)."""

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from activities.engine.resumption import resume_waiting
from activities.engine.waits import ELAPSED
from activities.models import Activity, WaitingRun, WaitState
from activities.selectors import RunnableActivity

RESUME_ONE = "tests.benchmarks.journey_tasks.resume_one_task"


@shared_task(name=RESUME_ONE, acks_late=True)
def resume_one_task(run_id: int) -> None:
    with transaction.atomic():
        waiting = (
            WaitingRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("run__event", "run__customer")
            .filter(pk=run_id, state=WaitState.WAITING)
            .first()
        )
        if waiting is None:
            return
        row = Activity.objects.values_list(
            "pk", "template_id", "template__version", "config_version", "starts_at", "ends_at"
        ).get(pk=waiting.activity_id)
        resume_waiting(
            waiting=waiting,
            activity=RunnableActivity(*row),
            outcome=ELAPSED,
            arrived=None,
            now=timezone.now(),
        )

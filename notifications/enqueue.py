"""The notification tasks by name, and how services start them (see `core.enqueue`).

Services start work only through here: `notifications.tasks` imports the services to run them,
so a service importing it would close a cycle. The names are the tasks' registered names
(`tasks.py` declares each task with its constant) and the keys of `CELERY_TASK_ROUTES`.
"""

from __future__ import annotations

from core import enqueue

LAUNCH_BROADCAST = "notifications.tasks.launch_broadcast_task"
FIRE_STANDING_BROADCAST = "notifications.tasks.fire_standing_broadcast_task"
PLAN_BROADCAST = "notifications.tasks.plan_broadcast_task"
SEND_BATCH = "notifications.tasks.send_batch_task"
SEND_DELIVERY = "notifications.tasks.send_delivery_task"
SETTLE_CANCELLED_BROADCAST = "notifications.tasks.settle_cancelled_broadcast_task"
SWEEP_DELIVERIES = "notifications.tasks.sweep_deliveries_task"


def plan_broadcast(*, broadcast_id: int, token: str) -> bool:
    """A planner loop holding the lease `token`."""
    return enqueue.send(PLAN_BROADCAST, args=(broadcast_id, token))


def send_batch(*, broadcast_id: int, slot: int, token: str) -> bool:
    """A sender loop in `slot`, holding the lease `token`, from the broadcast's first row."""
    return enqueue.send(SEND_BATCH, args=(broadcast_id, slot, token))


def send_delivery(*, delivery_id: int) -> bool:
    return enqueue.send(SEND_DELIVERY, args=(delivery_id,))


def settle_cancelled_broadcast_on_commit(*, broadcast_id: int) -> None:
    enqueue.on_commit(SETTLE_CANCELLED_BROADCAST, args=(broadcast_id,))

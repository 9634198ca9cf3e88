"""The bare path: the same HTTP stack and worker, one insert and a no-op task."""

import redis
from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

COUNTER = "gambit:bench:bare-done"


@shared_task(acks_late=True)
def noop_task(row_id: int) -> None:
    redis.Redis.from_url(settings.REDIS_URL).incr(COUNTER)


@csrf_exempt
def bare_view(request):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_bare (body) VALUES (%s) RETURNING id", [request.body])
        row_id = cursor.fetchone()[0]
        transaction.on_commit(lambda: noop_task.delay(row_id))
    return JsonResponse({"id": row_id}, status=202)

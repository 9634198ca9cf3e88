"""The bare path: the same HTTP stack (gunicorn, Django, DRF with the same API-key
authentication, scope check and rate limit) and the same worker, doing one insert and a no-op
task. What the full path costs beyond this is Gambit's own work."""

from celery import shared_task
from django.db import connection, transaction
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.models import ApiScope
from core.redis_pools import redis_client

COUNTER = "gambit:bench:bare-done"


@shared_task(acks_late=True)
def noop_task(row_id: int) -> None:
    redis_client().incr(COUNTER)


class BareView(APIView):
    required_scope = ApiScope.EVENTS

    def post(self, request: Request) -> Response:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_bare (body) VALUES (%s) RETURNING id", [request.body])
            row_id = cursor.fetchone()[0]
            transaction.on_commit(lambda: noop_task.delay(row_id))
        return Response({"id": row_id}, status=202)

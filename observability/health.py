"""`/health/`: the database, Redis, and a Celery worker answering on every queue."""

import datetime

from django.conf import settings
from health_check.checks import Database
from health_check.contrib.celery import Ping
from health_check.contrib.redis import Redis
from health_check.views import HealthCheckView
from redis.asyncio import Redis as RedisClient

health_view = HealthCheckView.as_view(
    checks=[
        Database,
        (Redis, {"client_factory": lambda: RedisClient.from_url(settings.REDIS_URL)}),
        (
            Ping,
            {"timeout": datetime.timedelta(seconds=2), "limit": settings.GAMBIT_HEALTH_WORKERS},
        ),
    ]
)

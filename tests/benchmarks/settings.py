"""Benchmark settings: the test settings plus a bare endpoint and a no-op task to compare with,
with what a deployment has and the test settings turn off: persistent database connections,
and a rate limit no benchmark reaches (a 429 would measure nothing)."""

from config.logging import logging_config
from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.urls"
CELERY_IMPORTS = ("tests.benchmarks.bare", "tests.benchmarks.journey_tasks")  # not the test hooks
CELERY_TASK_ROUTES = {**CELERY_TASK_ROUTES, "tests.benchmarks.bare.noop_task": {"queue": "events"}}  # noqa: F405
LOGGING = logging_config(level="ERROR", renderer="json")
DATABASES["default"]["CONN_MAX_AGE"] = 60  # noqa: F405  (base.py's default)
GAMBIT_API_RATES = {**GAMBIT_API_RATES, "events": "1000000/min"}  # noqa: F405
# The shadow check runs every compiled query twice; a deployment does not.
GAMBIT_COMPILED_QUERY_SHADOW = False

"""Benchmark settings: the test settings plus a bare endpoint and a no-op task to compare with."""

from config.logging import logging_config
from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.urls"
CELERY_IMPORTS = (*CELERY_IMPORTS, "tests.benchmarks.bare")  # noqa: F405
CELERY_TASK_ROUTES = {**CELERY_TASK_ROUTES, "tests.benchmarks.bare.noop_task": {"queue": "events"}}  # noqa: F405
LOGGING = logging_config(level="ERROR", renderer="json")

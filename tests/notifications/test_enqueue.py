"""Services send tasks by name: every name must be a task, registered in every process (not
only in workers, where Celery autodiscovers them), with a queue."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from notifications import enqueue

NAMES = {value for name, value in vars(enqueue).items() if name.isupper()}
ROOT = Path(__file__).resolve().parent.parent.parent


def test_every_name_is_a_task_that_a_web_process_knows():
    """A fresh process that only sets Django up, as the web and beat do."""
    script = (
        "import json, django; django.setup(); from celery import current_app; "
        "print(json.dumps(sorted(current_app.tasks)))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    shown = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, check=True
    )
    registered = set(json.loads(shown.stdout.splitlines()[-1]))
    assert {name for name in registered if name.startswith("notifications.")} == NAMES


def test_every_name_has_a_queue():
    assert not NAMES - set(settings.CELERY_TASK_ROUTES)

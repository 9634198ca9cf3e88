"""Loaded by test workers only (CELERY_IMPORTS in config/settings/test.py).

Transactional tests flush the database between tests, and the content types come back with
new ids; a long-lived worker must not keep the old ones cached (django-fsm-log writes them).
"""

from celery.signals import task_prerun
from django.contrib.contenttypes.models import ContentType


@task_prerun.connect
def forget_content_types(**kwargs: object) -> None:
    ContentType.objects.clear_cache()

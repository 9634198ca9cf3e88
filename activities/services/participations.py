from typing import Any

from django.db.models import F

from activities.models import Participation


def remember(*, participation: Participation, values: dict[str, Any]) -> None:
    """Keep context keys on the participation for later events (runs hold its row lock)."""
    participation.data = {**(participation.data or {}), **values}
    Participation.objects.filter(pk=participation.pk).update(
        data=participation.data, version=F("version") + 1
    )

"""Configuration history (django-reversion): version stamps that never go backwards."""

from __future__ import annotations

from typing import Any

from reversion.models import Version


def bump_version(obj: Any, field: str) -> int:
    """One more than any value `field` ever had, in the row or in any recorded revision.

    Compiled configuration is cached per (id, version); a revert restores an old stamp, and
    reusing a stamp some process cached for other content would serve a stale configuration.
    """
    current = type(obj).objects.filter(pk=obj.pk).values_list(field, flat=True).first() or 0
    recorded = [
        version.field_dict.get(field) or 0 for version in Version.objects.get_for_object(obj)
    ]
    return max([current, *recorded]) + 1

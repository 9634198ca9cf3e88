"""What the commands share: turning a domain error into a CommandError that lists its paths."""

from __future__ import annotations

from django.core.management.base import CommandError

from core.errors import GambitError


def command_error(error: GambitError) -> CommandError:
    lines = [error.message]
    for item in error.details or []:
        if isinstance(item, dict):
            where = item.get("path") or "(document)"
            lines.append(f"  {where}: {item.get('message')} [{item.get('code')}]")
    return CommandError("\n".join(lines))

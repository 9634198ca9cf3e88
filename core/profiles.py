"""A back-office user's remembered settings (the language they chose)."""

from __future__ import annotations

from django.conf import settings

from core.models import OperatorProfile

LANGUAGES = {code for code, _name in settings.LANGUAGES}


def remember_language(*, user_id: int, language: str) -> None:
    """Keep `language` as the user's own; an unknown code is ignored."""
    if language in LANGUAGES:
        OperatorProfile.objects.update_or_create(user_id=user_id, defaults={"language": language})


def profile_language(*, user_id: int) -> str:
    """The user's chosen language, or "" when they never chose one."""
    return (
        OperatorProfile.objects.filter(user_id=user_id).values_list("language", flat=True).first()
        or ""
    )

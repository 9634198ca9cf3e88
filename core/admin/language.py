"""The language a back-office user picks is theirs, on every device and after logging out:
kept in their profile, applied on each admin request, not only in a browser cookie."""

from __future__ import annotations

from collections.abc import Callable

from django import http
from django.conf import settings
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from core.profiles import profile_language, remember_language

# The profile's language, cached in the session so a request reads it at most once.
SESSION_KEY = "gambit_language"
ADMIN_PREFIX = "/admin/"


@require_POST
def set_own_language(request: http.HttpRequest) -> http.HttpResponse:
    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and translation.check_for_language(language):
        remember_language(user_id=request.user.pk, language=language)
        request.session[SESSION_KEY] = language
    return response


class ProfileLanguageMiddleware:
    """After authentication: an admin user's profile language wins over the cookie."""

    def __init__(self, get_response: Callable[[http.HttpRequest], http.HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: http.HttpRequest) -> http.HttpResponse:
        language = self._language(request)
        if not language or language == getattr(request, "LANGUAGE_CODE", None):
            return self.get_response(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        if settings.LANGUAGE_COOKIE_NAME in response.cookies:
            return response  # the user just chose a language: theirs wins
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        )
        return response

    def _language(self, request: http.HttpRequest) -> str:
        if not request.path.startswith(ADMIN_PREFIX):
            return ""
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return ""
        language = request.session.get(SESSION_KEY)
        if language is None:
            language = profile_language(user_id=user.pk)
            request.session[SESSION_KEY] = language
        return str(language)

"""Requests refused before any view: a path no URL of Gambit can hold."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from core.errors import error_body
from core.text import has_control_characters


class RejectControlCharactersInPathMiddleware:
    """A NUL or another control character in the path (`/customers/a%00b/`) is 400
    `invalid_path`, as JSON: no view, no database query (PostgreSQL refuses NUL in text and the
    request would otherwise end as an HTML 500)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if has_control_characters(request.path):
            return JsonResponse(
                error_body("invalid_path", "The path contains control characters."), status=400
            )
        return self.get_response(request)

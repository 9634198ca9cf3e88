"""Every API error is JSON with a stable `code`; nothing reaches a 500 for bad input."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core import errors
from core.errors import error_body

DRF_CODES = {
    exceptions.ValidationError: "invalid_request",
    exceptions.ParseError: "malformed_json",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def _flatten(detail: Any, path: str = "") -> list[dict[str, str]]:
    if isinstance(detail, dict):
        return [
            item
            for key, value in detail.items()
            for item in _flatten(value, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [
                {"path": path, "message": str(item), "code": getattr(item, "code", "invalid")}
                for item in detail
            ]
        return [
            item
            for index, value in enumerate(detail)
            for item in _flatten(value, f"{path}[{index}]")
        ]
    return [{"path": path, "message": str(detail), "code": getattr(detail, "code", "invalid")}]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, errors.GambitError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.http_status)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database went away mid-request (restart, failover, a cut session). A retry with
        # the same Idempotency-Key finds whatever did commit, so 503 + Retry-After is safe.
        response = Response(
            error_body("service_unavailable", "The database is unavailable; retry shortly."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = "1"
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code = next(
        (c for cls, c in DRF_CODES.items() if isinstance(exc, cls)),
        getattr(exc, "default_code", "error"),
    )
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(code, "The request is not valid.", _flatten(exc.detail))
    else:
        response.data = error_body(code, str(exc.detail))
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for a URL no route matches (`/api/v1/events/not-a-uuid/`): JSON under /api/,
    like every other API error; the admin keeps Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "No such resource."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """The last resort under /api/ is JSON too, with a stable code."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; retry shortly."),
            status=500,
        )
    return defaults.server_error(request)

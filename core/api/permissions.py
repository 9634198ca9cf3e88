"""Storefront authentication: `Authorization: Api-Key <key>`, hashed, revocable, scoped.

No key or a bad key is 401; a valid key without the view's scope is 403.
"""

from typing import Any

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework_api_key.permissions import KeyParser

from core.models import StorefrontKey

KEYWORD = "Api-Key"


class StorefrontKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[None, StorefrontKey] | None:
        key = KeyParser().get(request)
        if not key:
            return None
        try:
            api_key = StorefrontKey.objects.get_from_key(key)
        except StorefrontKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Unknown API key.") from None
        if not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed("This API key is revoked or expired.")
        return None, api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class HasStorefrontKey(permissions.BasePermission):
    """Views name the scope they need in `required_scope`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, StorefrontKey):
            raise exceptions.NotAuthenticated("Send your key as 'Authorization: Api-Key <key>'.")
        scope = getattr(view, "required_scope", None)
        if scope is not None and scope not in (request.auth.scopes or []):
            raise exceptions.PermissionDenied(f"This API key lacks the scope {scope!r}.")
        return True

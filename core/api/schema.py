"""OpenAPI: how drf-spectacular describes the storefront key authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class StorefrontKeyScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.permissions.StorefrontKeyAuthentication"
    name = "StorefrontApiKey"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; create one with `manage.py create_api_key NAME`.",
        }

"""Admin building blocks every app's back-office uses, and the storefront keys' admin."""

from django.contrib import admin
from rest_framework_api_key.models import APIKey

from . import keys  # noqa: F401  (registers)

# Gambit's storefront keys are StorefrontKey; the library's own APIKey model is unused.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)

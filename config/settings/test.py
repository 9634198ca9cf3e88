"""Test settings: real PostgreSQL and Redis (the integration suite needs both)."""

from config.logging import logging_config

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "django-insecure-gambit-test-key"  # noqa: S105  (published: production refuses it)
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
# Tests close connections after each request and task unless a test asks for reuse (the soak does).
DATABASES = {
    "default": database_settings(  # noqa: F405
        default_url="postgres://postgres@127.0.0.1:5432/gambit", conn_max_age=0
    )
}
DATABASES["default"]["TEST"] = {"NAME": env.str("GAMBIT_TEST_DB", default="test_gambit")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = logging_config(
    level=env.str("DJANGO_LOG_LEVEL", default="WARNING"),
    renderer=env.str("GAMBIT_LOG_FORMAT", default="console"),
)
# Static files come from the staticfiles app in tests; whitenoise would warn about STATIC_ROOT.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("whitenoise")]  # noqa: F405

# Tests use their own Redis database (and helpers running suites side by side pick others).
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/9")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
GAMBIT_SWEEP_AFTER_SECONDS = env.int("GAMBIT_SWEEP_AFTER_SECONDS", default=2)
CELERY_IMPORTS = ("tests.worker_hooks",)
GAMBIT_COMPILED_QUERY_SHADOW = True  # compiled queries also run their queryset and must match
GAMBIT_WEBHOOK_ALLOW_HTTP = True
GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]  # the tests' HTTP sinks
GAMBIT_WEBHOOK_SECRET = "gambit-test-webhook-secret"  # noqa: S105  (test only)

"""Production, the settings module manage.py, WSGI, ASGI and Celery use unless told otherwise.

It fails closed: the secret key, the allowed hosts and DATABASE_URL have no defaults, a key
that is public (the development and test keys), DEBUG on or an unlocked `/metrics` stops it at
import with ImproperlyConfigured, and every security header is on. A workstation chooses
config.settings.development explicitly (`make run` does).
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import database_settings, env

# Django's own marker for a key that is not secret: `startproject` writes it, and the
# development and test settings use it for theirs.
public_key_prefix = "django-insecure-"
on_a_workstation = (
    "On a workstation, choose DJANGO_SETTINGS_MODULE=config.settings.development (make run does)."
)

if env.bool("DJANGO_DEBUG", default=False):
    raise ImproperlyConfigured(
        "DJANGO_DEBUG is on, and production settings never run with DEBUG: it shows settings, "
        f"SQL and tracebacks to whoever gets an error page. Unset DJANGO_DEBUG. {on_a_workstation}"
    )
DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "Set the DJANGO_SECRET_KEY environment variable: production settings have no key of "
        f"their own (a long random value, e.g. `openssl rand -hex 32`). {on_a_workstation}"
    )
if SECRET_KEY.startswith(public_key_prefix):
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY starts with {public_key_prefix!r}: it is a published "
        "development or test key, and anyone could sign sessions and tokens with it. Set a "
        f"long random value (e.g. `openssl rand -hex 32`). {on_a_workstation}"
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES = {"default": database_settings(default_url=None, conn_max_age=60)}
# `/metrics` tells whoever asks how busy every queue, outbox and broadcast is; an open scrape
# is a decision the deployment states, never a variable it forgot.
GAMBIT_METRICS_TOKEN = env.str("GAMBIT_METRICS_TOKEN", default="")
if not GAMBIT_METRICS_TOKEN and not env.bool("GAMBIT_METRICS_PUBLIC", default=False):
    raise ImproperlyConfigured(
        "Set GAMBIT_METRICS_TOKEN (a long random value; Prometheus then sends "
        "`Authorization: Bearer <token>` to /metrics). If /metrics is reachable only from your "
        "monitoring network and should stay open, set GAMBIT_METRICS_PUBLIC=true instead. "
        f"{on_a_workstation}"
    )

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Probes and scrapers on the internal network speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

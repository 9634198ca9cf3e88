"""Development on a workstation: chosen explicitly (`make run` exports
DJANGO_SETTINGS_MODULE=config.settings.development), never by default.

DEBUG on, a published secret key (production refuses it), local hosts and the local
PostgreSQL; each can still be overridden from the environment.
"""

from .base import *  # noqa: F403
from .base import database_settings, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="django-insecure-gambit-development-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
DATABASES = {
    "default": database_settings(
        default_url="postgres://postgres@127.0.0.1:5432/gambit", conn_max_age=60
    )
}
GAMBIT_WEBHOOK_ALLOW_HTTP = env.bool("GAMBIT_WEBHOOK_ALLOW_HTTP", default=True)
GAMBIT_WEBHOOK_SECRET = env.str("GAMBIT_WEBHOOK_SECRET", default="gambit-development-secret")

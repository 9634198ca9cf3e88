"""Settings shared by every environment; every deployment-specific value comes from the environment.

This module is never a settings module of its own: production.py (the default everywhere),
development.py (`make run`) and test.py (pytest) build on it. It holds no value that would be
unsafe if production inherited it: DEBUG is off, and the secret key, the allowed hosts and the
database (PostgreSQL only) are chosen by those three modules.
"""

import datetime as dt
import re
from pathlib import Path

import environ
from celery.schedules import crontab
from celery.schedules import schedule as every
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.logging import configure_structlog, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
API_RATE = re.compile(r"[1-9][0-9]*/(s|sec|m|min|h|hour|d|day)")
env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = False
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])


def database_settings(*, default_url: str | None, conn_max_age: int) -> dict:
    """The PostgreSQL database from DATABASE_URL (required when `default_url` is None).
    Connections live `conn_max_age` seconds (env DJANGO_CONN_MAX_AGE overrides) and are checked
    before reuse.

    Gambit runs on PostgreSQL alone: its writes rely on ON CONFLICT, SKIP LOCKED, AT TIME ZONE
    and partial indexes, so any other database is refused here rather than failing later.

    Server-side binding lets psycopg prepare a statement once it has run 5 times on a
    connection, so PostgreSQL stops parsing and planning it: the engine runs the same
    statements for every event, and this halves PostgreSQL's CPU per event
    (docs/decisions/0006-engine-hot-path.md). DJANGO_DB_PREPARED_STATEMENTS=false turns it off
    (needed behind a transaction-pooling PgBouncer).
    """
    database = (
        env.db("DATABASE_URL")
        if default_url is None
        else env.db("DATABASE_URL", default=default_url)
    )
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_URL must name a PostgreSQL database (postgres://user@host:5432/name), "
            f"not {database['ENGINE']}: Gambit relies on ON CONFLICT, SKIP LOCKED, AT TIME ZONE "
            "and partial indexes."
        )
    database["ATOMIC_REQUESTS"] = False
    database["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=conn_max_age)
    database["CONN_HEALTH_CHECKS"] = True
    if env.bool("DJANGO_DB_PREPARED_STATEMENTS", default=True):
        database.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
    return database


DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "django_celery_beat",
    "django_fsm",
    "django_fsm_log",
    "reversion",
    "reversion_compare",
    "django_structlog",
    "health_check",
    "core",
    "segments",
    "activities",
    "notifications",
    "observability",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.api.middleware.RejectControlCharactersInPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # An admin user's language from their profile (after authentication, over the cookie).
    "core.admin.language.ProfileLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

# --- Back-office login: django-axes locks a username from an address after repeated failures.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("GAMBIT_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("GAMBIT_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Lockouts expire after the cool-off; `manage.py axes_reset_username NAME` lifts one early. Its
# admin pages stay off: operators have nothing to do there, and they come untranslated.
AXES_ENABLE_ADMIN = False

# --- Content-Security-Policy (django-csp): the back-office and the API docs load only their own
# static files; inline style attributes stay allowed because the Django admin writes them.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("DJANGO_LANGUAGE_CODE", default="en")
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
# Date-time formats that name the zone (config/formats/<language>/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True
# The zone an operator's form defaults to when an activity names none.
GAMBIT_DEFAULT_TIMEZONE = env.str("GAMBIT_DEFAULT_TIMEZONE", default="Asia/Shanghai")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "gambit",
    }
}

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.api.permissions.StorefrontKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.HasStorefrontKey"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.LimitedJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.StorefrontKeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# Per storefront key and API scope (activities/api/throttling.py); over it: 429 + Retry-After.
# Environment format: GAMBIT_API_RATES="events=12000/min;customers=1200/min;..." (N/s|min|hour|day).
GAMBIT_API_RATES = env.dict(
    "GAMBIT_API_RATES",
    cast={"value": str},
    default={
        "events": "12000/min",
        "customers": "1200/min",
        "orders": "6000/min",
        "broadcasts": "600/min",
        "coupons": "12000/min",
    },
)
if bad_rates := [r for r in GAMBIT_API_RATES.values() if not API_RATE.fullmatch(r)]:
    raise ImproperlyConfigured(
        f"GAMBIT_API_RATES: {bad_rates} are not N/s, N/min, N/hour or N/day."
    )
# Request bodies: the largest legitimate one is a bulk sync of 10,000 customers (about 4 MB
# with attributes); anything larger is 413 payload_too_large (activities/api/parsers.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=8 * 1024 * 1024)
# `/metrics` (config/metrics.py): set it and scrapers send "Authorization: Bearer <token>".
GAMBIT_METRICS_TOKEN = env.str("GAMBIT_METRICS_TOKEN", default="")
SPECTACULAR_SETTINGS = {
    "TITLE": "Gambit storefront API",
    "DESCRIPTION": (
        "Fire behaviour events, read results and grants, sync customers and orders. "
        "Keys are server-to-server credentials: a key reads and writes every customer within "
        "its scopes (events, customers, orders, broadcasts); a new key has none it was not given."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the installed sidecar package, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection around every task unless told how many
# tasks may reuse it; "practically all" hands the decision back to Django (CONN_MAX_AGE, health
# checks) through config/celery.py's task hooks. docs/decisions/0005-worker-db-connections.md
CELERY_DB_REUSE_MAX = 1_000_000_000
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [Queue("events"), Queue("fanout"), Queue("sends"), Queue("default")]
CELERY_TASK_ROUTES = {
    "activities.tasks.run_event_task": {"queue": "events"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A task not acknowledged within this many seconds is handed to another worker.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "sweep-pending-events": {
        "task": "activities.tasks.sweep_pending_events_task",
        "schedule": every(env.float("GAMBIT_SWEEP_INTERVAL", default=15.0)),
        "options": {"queue": "default"},
    },
    # Launches and ends what beat's one-off tasks missed (beat down, task lost).
    "refresh-segment-snapshots": {
        "task": "segments.tasks.refresh_dynamic_segments_task",
        "schedule": crontab(minute=0),
        "options": {"queue": "fanout"},
    },
    "catch-up-activities": {
        "task": "activities.tasks.catch_up_activities_task",
        "schedule": every(env.float("GAMBIT_CATCH_UP_INTERVAL", default=60.0)),
        "options": {"queue": "default"},
    },
}

# --- Gambit ------------------------------------------------------------------------------------
# How long an event may sit in pending/running before the sweeper dispatches it again.
GAMBIT_SWEEP_AFTER_SECONDS = env.int("GAMBIT_SWEEP_AFTER_SECONDS", default=30)
GAMBIT_MAX_EMIT_DEPTH = env.int("GAMBIT_MAX_EMIT_DEPTH", default=5)
GAMBIT_MAX_WAIT_SECONDS = 10
# `/health/` answers as soon as this many workers replied to its ping (the Procfile runs two:
# `worker` and `sender`), then checks that every queue has one; fewer wait out the 2 s timeout.
GAMBIT_HEALTH_WORKERS = env.int("GAMBIT_HEALTH_WORKERS", default=2)
# Each web process answers `/health/` from its last probe for this long (observability/health.py).
GAMBIT_HEALTH_CACHE_SECONDS = env.float("GAMBIT_HEALTH_CACHE_SECONDS", default=5.0)

# --- No input holds a worker: time limits and attempts caps (docs/decisions/0009) --------------
# Every task: at the soft limit it gets SoftTimeLimitExceeded and can clean up; at the hard limit
# its pool process is killed and replaced. Tasks with a known shape set tighter limits.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
# One attempt at one event. Both stay under GAMBIT_SWEEP_AFTER_SECONDS, so the sweeper never
# dispatches an event whose attempt is still running.
GAMBIT_EVENT_SOFT_TIME_LIMIT = env.int("GAMBIT_EVENT_SOFT_TIME_LIMIT", default=10)
GAMBIT_EVENT_TIME_LIMIT = env.int("GAMBIT_EVENT_TIME_LIMIT", default=20)
# An event still unfinished after this many attempts fails as a dead letter.
GAMBIT_EVENT_MAX_ATTEMPTS = env.int("GAMBIT_EVENT_MAX_ATTEMPTS", default=5)
# The call_webhook step: signed with this secret, https only, public addresses only.
GAMBIT_WEBHOOK_SECRET = env.str("GAMBIT_WEBHOOK_SECRET", default="")
GAMBIT_WEBHOOK_ALLOW_HTTP = env.bool("GAMBIT_WEBHOOK_ALLOW_HTTP", default=False)
GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS = env.list("GAMBIT_WEBHOOK_ALLOWED_PRIVATE_HOSTS", default=[])
GAMBIT_WEBHOOK_TIMEOUT_SECONDS = env.float("GAMBIT_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
GAMBIT_WEBHOOK_SOFT_TIME_LIMIT = env.int("GAMBIT_WEBHOOK_SOFT_TIME_LIMIT", default=30)
GAMBIT_WEBHOOK_TIME_LIMIT = env.int("GAMBIT_WEBHOOK_TIME_LIMIT", default=40)
GAMBIT_WEBHOOK_MAX_ATTEMPTS = env.int("GAMBIT_WEBHOOK_MAX_ATTEMPTS", default=12)
GAMBIT_WEBHOOK_RETRY_BASE_SECONDS = env.float("GAMBIT_WEBHOOK_RETRY_BASE_SECONDS", default=2.0)
GAMBIT_WEBHOOK_RETRY_MAX_SECONDS = env.float("GAMBIT_WEBHOOK_RETRY_MAX_SECONDS", default=600.0)
CELERY_TASK_ROUTES.update(
    {
        "activities.tasks.call_webhook_task": {"queue": "default"},
        "activities.tasks.sweep_webhook_calls_task": {"queue": "default"},
    }
)
CELERY_BEAT_SCHEDULE["sweep-webhook-calls"] = {
    "task": "activities.tasks.sweep_webhook_calls_task",
    "schedule": every(env.float("GAMBIT_SWEEP_INTERVAL", default=15.0)),
    "options": {"queue": "default"},
}

# --- Journeys: waiting runs (docs/journeys.md) ---------------------------------------------------
# Beat sweeps due waiting runs this often; each sweep resumes batch after batch for at most
# GAMBIT_JOURNEY_SWEEP_SECONDS, so a run resumes at most about one interval after it is due.
# At most GAMBIT_JOURNEY_SWEEPERS sweeps run at once (SKIP LOCKED shares the rows between
# them); the rest of the worker's slots stay free for storefront events. One keeps up with
# 100,000 due a minute on two cores, and two cost the storefront's latency there
# (docs/benchmarks.md); raise it with more cores for PostgreSQL and the workers.
GAMBIT_JOURNEY_BATCH = env.int("GAMBIT_JOURNEY_BATCH", default=500)
GAMBIT_JOURNEY_SWEEP_SECONDS = env.float("GAMBIT_JOURNEY_SWEEP_SECONDS", default=50.0)
GAMBIT_JOURNEY_SWEEPERS = env.int("GAMBIT_JOURNEY_SWEEPERS", default=1)
CELERY_TASK_ROUTES["activities.tasks.resume_due_waits_task"] = {"queue": "default"}
CELERY_BEAT_SCHEDULE["resume-due-waits"] = {
    "task": "activities.tasks.resume_due_waits_task",
    "schedule": every(env.float("GAMBIT_JOURNEY_SWEEP_INTERVAL", default=2.0)),
    "options": {"queue": "default", "expires": 30},
}

# --- Coupons: issuing to a segment, expiry (docs/decisions/0014-coupons-as-assets.md) -------------
# Customers per page of an issue (one transaction each); one task issues pages for about
# GAMBIT_ISSUE_SECONDS, then hands over to a fresh task; an approved issue with no page for
# GAMBIT_ISSUE_STALLED_SECONDS is started again by the sweep (its worker died).
GAMBIT_ISSUE_PAGE_SIZE = env.int("GAMBIT_ISSUE_PAGE_SIZE", default=5000)
GAMBIT_ISSUE_SECONDS = env.float("GAMBIT_ISSUE_SECONDS", default=60.0)
GAMBIT_ISSUE_STALLED_SECONDS = env.int("GAMBIT_ISSUE_STALLED_SECONDS", default=120)
CELERY_TASK_ROUTES["activities.tasks.issue_benefit_task"] = {"queue": "fanout"}
CELERY_TASK_ROUTES["activities.tasks.resume_stalled_issues_task"] = {"queue": "default"}
CELERY_TASK_ROUTES["activities.tasks.expire_coupons_task"] = {"queue": "default"}
CELERY_BEAT_SCHEDULE["resume-stalled-issues"] = {
    "task": "activities.tasks.resume_stalled_issues_task",
    "schedule": every(env.float("GAMBIT_ISSUE_SWEEP_INTERVAL", default=60.0)),
    "options": {"queue": "default", "expires": 50},
}
# Coupons end at local midnights; a sweep every few minutes expires them in batches.
CELERY_BEAT_SCHEDULE["expire-coupons"] = {
    "task": "activities.tasks.expire_coupons_task",
    "schedule": every(env.float("GAMBIT_COUPON_EXPIRY_INTERVAL", default=300.0)),
    "options": {"queue": "default", "expires": 250},
}
# Gameplays: expire teams and help requests past their lifetime; settle ended activities
# (leaderboard prizes, once).
CELERY_BEAT_SCHEDULE["settle-gameplays"] = {
    "task": "activities.tasks.settle_gameplays_task",
    "schedule": every(env.float("GAMBIT_SETTLE_INTERVAL", default=60.0)),
    "options": {"queue": "default", "expires": 50},
}

# --- Notifications ------------------------------------------------------------------------------
# Channel providers: each backend in notifications/backends/ reads only its own dict.
NOTIFICATIONS_EMAIL = {
    "BACKEND": env.str(
        "NOTIFICATIONS_EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
    ),
    "HOST": env.str("NOTIFICATIONS_EMAIL_HOST", default="localhost"),
    "PORT": env.int("NOTIFICATIONS_EMAIL_PORT", default=25),
    "USER": env.str("NOTIFICATIONS_EMAIL_USER", default=""),
    "PASSWORD": env.str("NOTIFICATIONS_EMAIL_PASSWORD", default=""),
    "USE_TLS": env.bool("NOTIFICATIONS_EMAIL_USE_TLS", default=False),
    "USE_SSL": env.bool("NOTIFICATIONS_EMAIL_USE_SSL", default=False),
    "TIMEOUT": env.float("NOTIFICATIONS_EMAIL_TIMEOUT", default=10.0),
    "FROM": env.str("NOTIFICATIONS_EMAIL_FROM", default="Gambit <no-reply@localhost>"),
    # Message-IDs are <gambit.d{delivery id}@{domain}>: one per delivery, the same on a resend.
    "MESSAGE_ID_DOMAIN": env.str("NOTIFICATIONS_MESSAGE_ID_DOMAIN", default="gambit.local"),
}
NOTIFICATIONS_WECHAT = {
    "API_BASE": env.str("NOTIFICATIONS_WECHAT_API_BASE", default="https://api.weixin.qq.com"),
    "APPID": env.str("NOTIFICATIONS_WECHAT_APPID", default=""),
    "SECRET": env.str("NOTIFICATIONS_WECHAT_SECRET", default=""),
    "MINIPROGRAM_STATE": env.str("NOTIFICATIONS_WECHAT_MINIPROGRAM_STATE", default="formal"),
    "LANG": env.str("NOTIFICATIONS_WECHAT_LANG", default="zh_CN"),
}
NOTIFICATIONS_SMS = {
    "URL": env.str("NOTIFICATIONS_SMS_URL", default=""),
    "TOKEN": env.str("NOTIFICATIONS_SMS_TOKEN", default=""),
    "SENDER": env.str("NOTIFICATIONS_SMS_SENDER", default=""),
}
NOTIFICATIONS_WEBHOOK = {
    "URL": env.str("NOTIFICATIONS_WEBHOOK_URL", default=""),
    # Signs each body (X-Gambit-Signature: sha256=<hex HMAC>) when set.
    "SECRET": env.str("NOTIFICATIONS_WEBHOOK_SECRET", default=""),
}
NOTIFICATIONS_HTTP_TIMEOUT = env.float("NOTIFICATIONS_HTTP_TIMEOUT", default=10.0)
# Messages per second per channel, one budget shared by every worker (a Redis token bucket).
# Environment format: NOTIFICATIONS_RATE_LIMITS="email=200;wechat=100;sms=50;webhook=200".
NOTIFICATIONS_RATE_LIMITS = env.dict(
    "NOTIFICATIONS_RATE_LIMITS",
    cast={"value": int},
    default={"email": 200, "wechat": 100, "sms": 50, "webhook": 200},
)
NOTIFICATIONS_PAGE_SIZE = env.int("NOTIFICATIONS_PAGE_SIZE", default=5000)
NOTIFICATIONS_BATCH_SIZE = env.int("NOTIFICATIONS_BATCH_SIZE", default=200)
NOTIFICATIONS_SEND_THREADS = env.int("NOTIFICATIONS_SEND_THREADS", default=8)
NOTIFICATIONS_SENDERS_PER_BROADCAST = env.int("NOTIFICATIONS_SENDERS_PER_BROADCAST", default=4)
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=6)
# Claims a message may lose with a dead sender before it fails (it may be what kills them).
NOTIFICATIONS_MAX_LOST_CLAIMS = env.int("NOTIFICATIONS_MAX_LOST_CLAIMS", default=20)
NOTIFICATIONS_RETRY_BASE_SECONDS = env.float("NOTIFICATIONS_RETRY_BASE_SECONDS", default=2.0)
NOTIFICATIONS_RETRY_MAX_SECONDS = env.float("NOTIFICATIONS_RETRY_MAX_SECONDS", default=300.0)
# A provider failing this many times in a row is left alone for the cooldown.
NOTIFICATIONS_CIRCUIT_THRESHOLD = env.int("NOTIFICATIONS_CIRCUIT_THRESHOLD", default=10)
NOTIFICATIONS_CIRCUIT_COOLDOWN_SECONDS = env.float(
    "NOTIFICATIONS_CIRCUIT_COOLDOWN_SECONDS", default=15.0
)
NOTIFICATIONS_PAUSE_AFTER_ERRORS = env.int("NOTIFICATIONS_PAUSE_AFTER_ERRORS", default=100)
# A claim not renewed for this long belongs to a dead sender; the sweeper queues it again.
NOTIFICATIONS_CLAIM_LEASE_SECONDS = env.int("NOTIFICATIONS_CLAIM_LEASE_SECONDS", default=60)
NOTIFICATIONS_FREQUENCY_CAP = env.int("NOTIFICATIONS_FREQUENCY_CAP", default=3)
NOTIFICATIONS_FREQUENCY_WINDOW_HOURS = env.int("NOTIFICATIONS_FREQUENCY_WINDOW_HOURS", default=24)
NOTIFICATIONS_BIRTHDAY_TICK_MINUTES = 15
CELERY_TASK_ROUTES.update(
    {
        "notifications.tasks.plan_broadcast_task": {"queue": "fanout"},
        "notifications.tasks.fire_standing_broadcast_task": {"queue": "fanout"},
        "notifications.tasks.settle_cancelled_broadcast_task": {"queue": "fanout"},
        "notifications.tasks.send_batch_task": {"queue": "sends"},
        "notifications.tasks.send_delivery_task": {"queue": "sends"},
        "notifications.tasks.launch_broadcast_task": {"queue": "default"},
        "notifications.tasks.sweep_deliveries_task": {"queue": "default"},
    }
)
CELERY_BEAT_SCHEDULE["sweep-notification-deliveries"] = {
    "task": "notifications.tasks.sweep_deliveries_task",
    "schedule": every(env.float("NOTIFICATIONS_SWEEP_INTERVAL", default=15.0)),
    "options": {"queue": "default"},
}
# --- end Notifications -------------------------------------------------------------------------

# --- Logging: JSON lines, with event/run/activity/customer bound by the engine ------------------
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("GAMBIT_LOG_FORMAT", default="json")
LOGGING = logging_config(level=LOG_LEVEL, renderer=LOG_FORMAT)
DJANGO_STRUCTLOG_CELERY_ENABLED = True

configure_structlog()

# Events move pending -> running -> done on the hot path; their audit trail is the row itself.
DJANGO_FSM_LOG_IGNORED_MODELS = ("activities.models.event.Event",)

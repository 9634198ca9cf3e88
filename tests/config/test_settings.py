"""Settings fail closed: production is the default settings module, it refuses a published key
and DEBUG, and the base holds nothing production could inherit unsafely."""

import importlib
import os
import subprocess
import sys
from types import ModuleType

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tests.conftest import ROOT

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gambit"
A_REAL_KEY = "f3c1" * 16


def load_settings(monkeypatch, module: str, **environment: str) -> ModuleType:
    """Imports a settings module afresh with exactly `environment` for its DJANGO_* variables."""
    for name in [name for name in os.environ if name.startswith("DJANGO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop(module, None)
    try:
        return importlib.import_module(module)
    finally:
        sys.modules.pop(module, None)


def run_without_a_settings_module(command: list[str], **environment: str):
    """`command` in a fresh interpreter whose environment names no settings module."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "GAMBIT_TEST"))
    }
    env.update(DATABASE_URL=DATABASE_URL, DJANGO_ALLOWED_HOSTS="gambit.example.com", **environment)
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )


def development_key(monkeypatch) -> str:
    return load_settings(monkeypatch, "config.settings.development").SECRET_KEY


def test_base_settings_hold_no_key_no_hosts_no_database_and_no_debug():
    from config.settings import base

    assert base.DEBUG is False
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASES"):
        assert not hasattr(base, name), name


def test_development_settings_are_debug_with_a_published_key_and_local_hosts(monkeypatch):
    development = load_settings(monkeypatch, "config.settings.development")

    assert development.DEBUG is True
    assert development.SECRET_KEY.startswith("django-insecure-")
    assert development.ALLOWED_HOSTS == ["localhost", "127.0.0.1", "[::1]"]
    assert development.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_production_settings_load_with_a_real_key(monkeypatch):
    production = load_settings(
        monkeypatch,
        "config.settings.production",
        DJANGO_SECRET_KEY=A_REAL_KEY,
        DJANGO_ALLOWED_HOSTS="gambit.example.com",
        GAMBIT_METRICS_TOKEN="scrape-secret",
    )

    assert production.DEBUG is False
    assert production.SECRET_KEY == A_REAL_KEY
    assert production.ALLOWED_HOSTS == ["gambit.example.com"]


def test_production_refuses_the_development_key(monkeypatch):
    key = development_key(monkeypatch)

    with pytest.raises(ImproperlyConfigured, match="published development or test key"):
        load_settings(
            monkeypatch,
            "config.settings.production",
            DJANGO_SECRET_KEY=key,
            DJANGO_ALLOWED_HOSTS="gambit.example.com",
        )


def test_production_refuses_the_test_key(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="published development or test key"):
        load_settings(
            monkeypatch,
            "config.settings.production",
            DJANGO_SECRET_KEY=settings.SECRET_KEY,
            DJANGO_ALLOWED_HOSTS="gambit.example.com",
        )


def test_production_refuses_a_missing_key(monkeypatch):
    with pytest.raises(
        ImproperlyConfigured, match="Set the DJANGO_SECRET_KEY environment variable"
    ):
        load_settings(
            monkeypatch, "config.settings.production", DJANGO_ALLOWED_HOSTS="gambit.example.com"
        )


@pytest.mark.parametrize("debug", ["true", "on", "1"])
def test_production_refuses_debug(monkeypatch, debug):
    with pytest.raises(ImproperlyConfigured, match="never run with DEBUG"):
        load_settings(
            monkeypatch,
            "config.settings.production",
            DJANGO_DEBUG=debug,
            DJANGO_SECRET_KEY=A_REAL_KEY,
            DJANGO_ALLOWED_HOSTS="gambit.example.com",
        )


def load_production_metrics(monkeypatch, **environment: str) -> ModuleType:
    for name in ("GAMBIT_METRICS_TOKEN", "GAMBIT_METRICS_PUBLIC"):
        monkeypatch.delenv(name, raising=False)
    return load_settings(
        monkeypatch,
        "config.settings.production",
        DJANGO_SECRET_KEY=A_REAL_KEY,
        DJANGO_ALLOWED_HOSTS="gambit.example.com",
        **environment,
    )


def test_production_refuses_an_unlocked_metrics_endpoint(monkeypatch):
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^Set GAMBIT_METRICS_TOKEN .* set GAMBIT_METRICS_PUBLIC=true instead\.",
    ):
        load_production_metrics(monkeypatch)
    with pytest.raises(ImproperlyConfigured, match="Set GAMBIT_METRICS_TOKEN"):
        load_production_metrics(monkeypatch, GAMBIT_METRICS_PUBLIC="false")


def test_production_takes_a_metrics_token_or_an_explicitly_public_scrape(monkeypatch):
    locked = load_production_metrics(monkeypatch, GAMBIT_METRICS_TOKEN="scrape-secret")
    assert locked.GAMBIT_METRICS_TOKEN == "scrape-secret"

    public = load_production_metrics(monkeypatch, GAMBIT_METRICS_PUBLIC="true")
    assert public.GAMBIT_METRICS_TOKEN == ""


@pytest.mark.parametrize(
    "url", ["sqlite:///gambit.sqlite3", "mysql://gambit@127.0.0.1/gambit"], ids=["sqlite", "mysql"]
)
def test_only_postgresql_is_accepted(monkeypatch, url):
    monkeypatch.setenv("DATABASE_URL", url)
    from config.settings.base import database_settings

    with pytest.raises(ImproperlyConfigured, match="must name a PostgreSQL database"):
        database_settings(default_url=None, conn_max_age=0)


ENTRY_POINTS = {
    "manage.py": [sys.executable, "manage.py", "check"],
    "wsgi": [sys.executable, "-c", "import config.wsgi"],
    "asgi": [sys.executable, "-c", "import config.asgi"],
    # Celery reads its configuration from Django's settings the first time it is asked for it.
    "celery": [sys.executable, "-c", "from config.celery import app; app.conf.broker_url"],
}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_entry_points_default_to_production_and_refuse_the_development_key(
    monkeypatch, entry_point
):
    result = run_without_a_settings_module(
        ENTRY_POINTS[entry_point], DJANGO_SECRET_KEY=development_key(monkeypatch)
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY starts with 'django-insecure-'" in (
        result.stderr
    )


def test_manage_py_defaults_to_production_and_refuses_debug():
    result = run_without_a_settings_module(
        [sys.executable, "manage.py", "check"], DJANGO_SECRET_KEY=A_REAL_KEY, DJANGO_DEBUG="true"
    )

    assert result.returncode != 0
    assert "never run with DEBUG" in result.stderr


def test_manage_py_with_no_environment_at_all_asks_for_a_key():
    result = run_without_a_settings_module([sys.executable, "manage.py", "check"])

    assert result.returncode != 0
    assert "Set the DJANGO_SECRET_KEY environment variable" in result.stderr
    assert "config.settings.development" in result.stderr

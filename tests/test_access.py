"""Access control: every API route needs a key, keys are scoped and rate-limited, the admin
checks CSRF, production settings have no secret defaults, `/metrics` can be locked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from core.models import ALL_SCOPES, ApiScope
from tests.conftest import ROOT
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db

# Routes outside /api/v1/ that answer without a key, on purpose, and why.
PUBLIC = {
    "api/schema/": "the OpenAPI document (no data)",
    "api/docs/": "Swagger UI over that document",
    "health/": "load-balancer probe (no data)",
    "i18n/setlang/": "the admin's language switch (CSRF-protected POST)",
    "metrics": "Prometheus scrape; locked by GAMBIT_METRICS_TOKEN when set",
}
METHODS = ("get", "post", "put", "patch", "delete")
SAMPLE_ARGS = {
    "uuid": str(uuid.uuid4()),
    "int": "1",
    "str": "sample",
    "path": "sample",
    "slug": "sample",
}


def walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def concrete(route: str) -> str:
    return "/" + re.sub(
        r"<(?:(\w+):)?\w+>", lambda m: SAMPLE_ARGS[m.group(1) or "str"], route
    ).lstrip("^").rstrip("$")


def api_routes() -> list[tuple[str, URLPattern]]:
    return [(r, p) for r, p in walk(get_resolver().url_patterns) if r.startswith("api/v1/")]


def allowed_methods(pattern: URLPattern) -> list[str]:
    view = pattern.callback.cls
    return [m for m in METHODS if hasattr(view, m)]


def test_the_walk_finds_every_storefront_route():
    routes = {route for route, _ in api_routes()}
    assert routes == {
        "api/v1/events/",
        "api/v1/events/<uuid:event_id>/",
        "api/v1/activities/",
        "api/v1/activities/<str:code>/participation/<str:external_id>/",
        "api/v1/activities/<str:code>/experiment/",
        "api/v1/customers/<str:external_id>/grants/",
        "api/v1/customers/<str:external_id>/coupons/",
        "api/v1/coupons/<str:code>/redeem/",
        "api/v1/coupons/<str:code>/release/",
        "api/v1/customers/bulk/",
        "api/v1/customers/<str:external_id>/",
        "api/v1/orders/<str:external_id>/",
        "api/v1/orders/<str:external_id>/<str:transition>/",
        "api/v1/broadcasts/<int:broadcast_id>/",
        "api/v1/customers/<str:external_id>/activities/<str:code>/",
        "api/v1/activities/<str:code>/leaderboard/",
        "api/v1/activities/<str:code>/teams/<str:team>/",
        "api/v1/activities/<str:code>/assists/<str:help_request>/",
    }


@pytest.mark.parametrize("credentials", [None, "Api-Key not-a-key", "Bearer x", "Api-Key "])
def test_every_api_route_and_method_answers_401_without_a_valid_key(credentials):
    client = APIClient()
    if credentials:
        client.credentials(HTTP_AUTHORIZATION=credentials)
    checked = 0
    for route, pattern in api_routes():
        for method in allowed_methods(pattern):
            response = getattr(client, method)(concrete(route), {}, format="json")
            assert response.status_code == 401, (method, route, response.status_code)
            assert response.json()["code"] == "not_authenticated", (method, route)
            assert response["WWW-Authenticate"] == "Api-Key"
            checked += 1
    assert checked == 18


def test_a_revoked_key_is_refused():
    key, raw = make_api_key()
    key.revoked = True
    key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = client.get("/api/v1/activities/")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


def test_routes_outside_the_api_are_public_only_when_listed():
    """A new route anywhere must either need a key (under /api/v1/), be the admin (login),
    or be listed in PUBLIC with its reason."""
    for route, _ in walk(get_resolver().url_patterns):
        if route.startswith("api/v1/"):
            continue
        if route.startswith("admin/"):
            continue
        assert route in PUBLIC, f"{route} is neither under /api/v1/, the admin, nor PUBLIC"


def test_the_admin_asks_for_a_login():
    response = Client().get("/admin/activities/activity/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- scopes --------------------------------------------------------------------------------


def required_scopes() -> dict[tuple[str, str], str]:
    out = {}
    for route, pattern in api_routes():
        for method in allowed_methods(pattern):
            scope = pattern.callback.cls.required_scope
            assert scope in ALL_SCOPES, (route, scope)
            out[(method, route)] = scope
    return out


def test_every_api_view_names_a_scope():
    assert set(required_scopes().values()) == set(ALL_SCOPES)


@pytest.mark.parametrize("scope", ALL_SCOPES)
def test_a_key_without_the_scope_gets_403_everywhere_else(scope):
    _, raw = make_api_key(scopes=[scope])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    for (method, route), needed in required_scopes().items():
        response = getattr(client, method)(concrete(route), {}, format="json")
        if needed == scope:
            assert response.status_code != 403, (method, route)
        else:
            assert response.status_code == 403, (method, route, response.status_code)
            body = response.json()
            assert body["code"] == "permission_denied"
            assert body["detail"] == f"This API key lacks the scope {needed!r}."


def test_an_events_key_cannot_sync_customers_and_nothing_is_written():
    from segments.models import Customer

    _, raw = make_api_key(scopes=[ApiScope.EVENTS])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = client.put("/api/v1/customers/mallory/", {"name": "M"}, format="json")
    assert response.status_code == 403
    response = client.post(
        "/api/v1/customers/bulk/", {"customers": [{"external_id": "x"}]}, format="json"
    )
    assert response.status_code == 403
    assert not Customer.objects.exists()


# --- rate limits ---------------------------------------------------------------------------


@pytest.fixture
def tight_rates(settings):
    settings.GAMBIT_API_RATES = {**settings.GAMBIT_API_RATES, "events": "3/min"}
    return settings


def keyed_client(**kwargs) -> APIClient:
    _, raw = make_api_key(**kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def test_over_the_rate_a_key_gets_429_with_retry_after(tight_rates):
    client = keyed_client()
    statuses = [client.get("/api/v1/activities/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/activities/")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_rates_are_per_key_and_per_scope(tight_rates):
    first, second = keyed_client(name="a"), keyed_client(name="b")
    for _ in range(3):
        assert first.get("/api/v1/activities/").status_code == 200
    assert first.get("/api/v1/activities/").status_code == 429
    # Another key has its own budget; the same key's other scopes are untouched.
    assert second.get("/api/v1/activities/").status_code == 200
    assert first.put("/api/v1/customers/c1/", {}, format="json").status_code == 201


def test_a_redis_outage_lets_requests_through(tight_rates, monkeypatch):
    import redis

    from core.api import throttling

    class Down:
        def pipeline(self, **kwargs):
            raise redis.ConnectionError("down")

    monkeypatch.setattr(throttling, "_client", lambda: Down())
    client = keyed_client()
    assert [client.get("/api/v1/activities/").status_code for _ in range(5)] == [200] * 5


@pytest.mark.parametrize(
    ("rate", "parsed"), [("600/min", (600, 60)), ("5/s", (5, 1)), ("10/hour", (10, 3600))]
)
def test_rates_parse(rate, parsed):
    from core.api.throttling import parse_rate

    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["", "0/min", "ten/min", "5/week", "-1/s"])
def test_bad_rates_are_refused(rate):
    from core.api.throttling import parse_rate

    with pytest.raises(ValueError, match="is not N/s"):
        parse_rate(rate)


# --- admin: CSRF ---------------------------------------------------------------------------


def test_admin_posts_need_the_csrf_token():
    user = User.objects.create_superuser("root", "root@example.com", "pw-Secure-123")
    client = Client(enforce_csrf_checks=True)
    refused = client.post("/admin/login/", {"username": "root", "password": "pw-Secure-123"})
    assert refused.status_code == 403
    client.force_login(user)
    add = client.post("/admin/activities/channel/add/", {"code": "csrf.test"})
    assert add.status_code == 403
    from activities.models import Channel

    assert not Channel.objects.filter(code="csrf.test").exists()


def test_csrf_middleware_is_on():
    from django.conf import settings

    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE


# --- production settings -------------------------------------------------------------------


def production_check(
    env_overrides: dict[str, str | None], *args: str
) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "GAMBIT_TEST"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/gambit",
            **env_overrides,
        }
    )
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = production_check({"DJANGO_ALLOWED_HOSTS": "gambit.example.com"})
    assert result.returncode != 0
    assert "Set the DJANGO_SECRET_KEY environment variable" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = production_check({"DJANGO_SECRET_KEY": "x" * 64})
    assert result.returncode != 0
    assert "Set the DJANGO_ALLOWED_HOSTS environment variable" in result.stderr


def test_production_refuses_to_start_without_a_database_url():
    result = production_check(
        {
            "DJANGO_SECRET_KEY": "x" * 64,
            "DJANGO_ALLOWED_HOSTS": "gambit.example.com",
            "DATABASE_URL": None,
        }
    )
    assert result.returncode != 0
    assert "Set the DATABASE_URL environment variable" in result.stderr


def test_production_passes_check_deploy():
    result = production_check(
        {
            "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
            "DJANGO_ALLOWED_HOSTS": "gambit.example.com",
            "GAMBIT_METRICS_TOKEN": uuid.uuid4().hex,
        },
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


# --- /metrics ------------------------------------------------------------------------------


def test_metrics_token_locks_the_scrape(settings):
    settings.GAMBIT_METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics").status_code == 401
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    ok = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert ok.status_code == 200
    assert b"gambit_queue_depth" in ok.content


# --- admin: what each role may do with keys, customers and broadcasts ----------------------


@pytest.fixture
def roles():
    from tests.e2e.scenario import role_user

    return {role: role_user(role) for role in ("Viewer", "Operator", "Approver")}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_only_a_superuser_creates_or_revokes_api_keys(roles):
    from core.models import StorefrontKey

    key, _ = make_api_key(name="shop")
    for role, user in roles.items():
        client = client_for(user)
        assert client.get("/admin/core/storefrontkey/add/").status_code == 403, role
        response = client.post(
            f"/admin/core/storefrontkey/{key.pk}/change/",
            {"name": "stolen", "revoked": "on", "scopes": '["events"]'},
        )
        assert response.status_code == 403, role
    key.refresh_from_db()
    assert (key.name, key.revoked) == ("shop", False)
    assert StorefrontKey.objects.count() == 1


def test_customers_are_the_storefronts_no_role_edits_them(roles):
    from segments.models import Customer

    customer = Customer.objects.create(external_id="c-1", name="Ann")
    for role, user in roles.items():
        client = client_for(user)
        response = client.post(
            f"/admin/segments/customer/{customer.pk}/change/", {"name": "Mallory"}
        )
        assert response.status_code == 403, role
        assert client.get("/admin/segments/customer/add/").status_code == 403, role
    customer.refresh_from_db()
    assert customer.name == "Ann"


def test_only_an_approver_sends_a_broadcast(roles, settings):
    from django.core.exceptions import PermissionDenied

    from notifications.models import Broadcast
    from notifications.services.broadcasts import start_broadcast
    from tests.notifications.factories import BroadcastFactory, NotificationTemplateFactory

    settings.NOTIFICATIONS_WEBHOOK = {"URL": "http://127.0.0.1:9/hook", "SECRET": ""}
    template = NotificationTemplateFactory(channel="webhook", subject="")
    broadcast = BroadcastFactory(template=template)
    for role in ("Viewer", "Operator"):
        with pytest.raises(PermissionDenied):
            start_broadcast(broadcast_id=broadcast.pk, by=roles[role])
        assert Broadcast.objects.get(pk=broadcast.pk).state == "draft"
    start_broadcast(broadcast_id=broadcast.pk, by=roles["Approver"])
    assert Broadcast.objects.get(pk=broadcast.pk).state == "sending"

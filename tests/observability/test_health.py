"""`/health/` probes at most once per window per process, and says which check failed only to
staff and to holders of the metrics token."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.test import Client
from health_check.checks import Database
from health_check.contrib.celery import Ping
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable

from observability import health

pytestmark = pytest.mark.django_db

NO_SENDER = "No worker for Celery task queue sends"


@pytest.fixture
def probes(monkeypatch, settings) -> Counter[str]:
    """Each check counts its runs; the Celery ping finds no worker for `sends`."""
    settings.GAMBIT_HEALTH_CACHE_SECONDS = 5
    settings.GAMBIT_METRICS_TOKEN = "scrape-secret"
    monkeypatch.setattr(health, "latest_probe", None)
    runs: Counter[str] = Counter()

    def passing(name: str):
        def run(self) -> None:
            runs[name] += 1

        return run

    def no_sender(self) -> None:
        runs["ping"] += 1
        raise ServiceUnavailable(NO_SENDER)

    monkeypatch.setattr(Database, "run", passing("database"))
    monkeypatch.setattr(Redis, "run", passing("redis"))
    monkeypatch.setattr(Ping, "run", no_sender)
    return runs


def test_requests_within_the_window_share_one_probe(probes, settings):
    first = Client().get("/health/")
    second = Client().get("/health/")

    assert (first.status_code, second.status_code) == (500, 500)
    assert probes == {"database": 1, "redis": 1, "ping": 1}

    settings.GAMBIT_HEALTH_CACHE_SECONDS = 0
    Client().get("/health/")
    assert probes == {"database": 2, "redis": 2, "ping": 2}


def test_while_one_request_probes_the_others_answer_from_the_previous_probe(probes, settings):
    Client().get("/health/")
    settings.GAMBIT_HEALTH_CACHE_SECONDS = 0

    with health.probing:
        response = Client().get("/health/")

    assert response.status_code == 500
    assert probes == {"database": 1, "redis": 1, "ping": 1}


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_ACCEPT": "application/json"}, {"HTTP_ACCEPT": "text/plain"}],
    ids=["any", "json", "text"],
)
def test_anonymous_callers_get_the_status_and_nothing_else(probes, headers):
    response = Client().get("/health/", **headers)

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "unavailable"}


def test_a_healthy_answer_is_as_bare(probes, monkeypatch):
    monkeypatch.setattr(Ping, "run", lambda self: None)

    response = Client().get("/health/?format=text")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_a_customer_account_without_staff_rights_sees_no_details(probes):
    client = Client()
    client.force_login(User.objects.create_user("clerk", password="x" * 12))

    response = client.get("/health/", HTTP_ACCEPT="application/json")

    assert response.json() == {"status": "unavailable"}


def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("ops", password="x" * 12, is_staff=True))
    return client


def test_staff_see_which_check_failed(probes):
    response = staff_client().get("/health/", HTTP_ACCEPT="application/json")

    assert response.status_code == 500
    failing = {name: value for name, value in response.json().items() if value != "OK"}
    assert list(failing.values()) == [f"Unavailable: {NO_SENDER}"]
    assert next(iter(failing)).startswith("Ping(")
    assert len(response.json()) == 3


def test_staff_get_the_text_and_page_forms_too(probes):
    client = staff_client()

    text = client.get("/health/", HTTP_ACCEPT="text/plain")
    page = client.get("/health/", HTTP_ACCEPT="text/html")

    assert text.status_code == page.status_code == 500
    assert f"Unavailable: {NO_SENDER}" in text.content.decode()
    assert NO_SENDER in page.content.decode()


def test_the_metrics_token_shows_the_details(probes):
    wrong = Client().get(
        "/health/", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION="Bearer nope"
    )
    right = Client().get(
        "/health/", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION="Bearer scrape-secret"
    )

    assert wrong.json() == {"status": "unavailable"}
    assert f"Unavailable: {NO_SENDER}" in right.json().values()
    assert probes["ping"] == 1

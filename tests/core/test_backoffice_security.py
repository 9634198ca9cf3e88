"""The back-office's own defences: login throttling, a Content-Security-Policy, API docs served
from the installed package."""

import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def login(client, password):
    return client.post(LOGIN, {"username": "ops", "password": password, "next": "/admin/"})


def test_five_wrong_passwords_lock_the_login_even_for_the_right_one(client, settings):
    User.objects.create_user("ops", password="right-password", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "wrong").status_code == 200
    assert login(client, "wrong").status_code == 429
    assert login(client, "right-password").status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_logs_in(client):
    User.objects.create_user("ops", password="right-password", is_staff=True)
    login(client, "wrong")
    assert login(client, "right-password").status_code == 302
    assert client.session["_auth_user_id"]


def test_admin_pages_carry_a_policy_without_inline_scripts(admin_client):
    response = admin_client.get(reverse("admin:index"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    html = response.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+=\"", html)


def test_api_docs_load_nothing_from_another_host(client):
    html = client.get("/api/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    assert all(source.startswith("/") for source in sources), sources
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)

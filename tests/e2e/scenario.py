"""Data the admin tests (browser and in-process) build: the appendix's quiz template, users in
each role, an activity ready to schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.utils import timezone

from activities.models import Activity, BenefitKind, StrategyTemplate
from activities.services import configuration

PASSWORD = "correct-horse-battery-staple"


def quiz_template(code: str = "quiz") -> StrategyTemplate:
    """A template with a quiz.completed chain: score >= 60, once a day, one chance."""
    template = StrategyTemplate.objects.create(code=code, name="Quiz")
    chain = configuration.save_chain(template=template, channel="quiz.completed")
    configuration.save_step(
        chain=chain,
        processor="rule_check",
        config={"all": [{"field": "event.score", "op": "gte", "value": 60}]},
    )
    configuration.save_step(
        chain=chain,
        processor="participation_limit",
        config={"key": "quiz", "per": "day", "limit": 1},
    )
    configuration.save_step(
        chain=chain, processor="grant_benefit", config={"benefit": "chance", "quantity": 1}
    )
    configuration.save_step(chain=chain, processor="build_result")
    return template


def activity_on(template: StrategyTemplate, code: str = "spring-quiz", **extra: Any) -> Activity:
    now = timezone.now()
    activity = Activity.objects.create(
        code=code,
        name="Spring quiz",
        template=template,
        timezone="Asia/Shanghai",
        starts_at=extra.pop("starts_at", now + dt.timedelta(days=1)),
        ends_at=extra.pop("ends_at", now + dt.timedelta(days=30)),
        **extra,
    )
    configuration.save_benefit(activity=activity, code="chance", kind=BenefitKind.CHANCE)
    return activity


def role_user(role: str | None, username: str | None = None) -> User:
    """A staff user in the group `role` (None: a superuser)."""
    name = username or (role or "admin").lower()
    if role is None:
        return User.objects.create_superuser(name, f"{name}@example.com", PASSWORD)
    call_command("setup_roles", stdout=open("/dev/null", "w"))  # noqa: SIM115
    user = User.objects.create_user(name, f"{name}@example.com", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def login(page: Any, username: str, password: str = PASSWORD) -> None:
    """Log in through the admin's login form."""
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


__all__ = ["activity_on", "login", "quiz_template", "role_user"]

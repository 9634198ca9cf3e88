"""Create or update the back-office roles: Operator, Approver, Viewer. Safe to run any time:
each group ends up with exactly the permissions below, whatever it had before.

- Viewer: sees everything in the back-office, changes nothing.
- Operator: builds configuration (templates, chains, activities, benefits, channels, segments,
  notification templates, broadcasts), submits activities for approval, prepares issues of a
  benefit to a segment and uploads coupon pools; cannot schedule, launch, pause, end, send,
  approve an issue or revoke.
- Approver: sees everything, approves (never their own edit: four eyes) and runs the
  lifecycle: schedule, pause, resume, end, archive, send broadcasts, approve (or call off)
  issues to segments, revoke grants. Approvers do not edit configuration, so what they
  approve is what an operator built.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Q

OPERATOR = "Operator"
APPROVER = "Approver"
VIEWER = "Viewer"

APPS = ("core", "activities", "segments", "notifications")
CRUD = ("add_", "change_", "delete_", "view_")
OPERATOR_PERMISSIONS = ("import_customers",)
# Rows the engine, the storefront or the senders write; operators only look at them.
RUNTIME_MODELS = {
    "core": {"storefrontkey"},
    "activities": {
        "event",
        "chainrun",
        "grant",
        "participation",
        "participationcounter",
        # Pool codes flip to issued when handed out; operators upload pools through the
        # benefit, never edit single codes. Redemptions and skips are what happened.
        "couponcode",
        "couponredemption",
        "issueskip",
        "webhookcall",
        "journeyversion",
        "waitingrun",
    },
    "segments": {"customer", "order", "segmentmember", "segmentsnapshot", "membership"},
    "notifications": {"delivery"},
}


def _app_permissions() -> Any:
    return Permission.objects.filter(content_type__app_label__in=APPS).select_related(
        "content_type"
    )


def role_permissions() -> dict[str, list[Permission]]:
    every = list(_app_permissions())
    view = [p for p in every if p.codename.startswith("view_")]
    edit = [
        p
        for p in every
        if p.codename.startswith(("add_", "change_", "delete_"))
        and p.content_type.model not in RUNTIME_MODELS.get(p.content_type.app_label, set())
    ]
    # Operators import customers (CSV, through the cleansing path) to build segments.
    operator_only = [p for p in every if p.codename in OPERATOR_PERMISSIONS]
    custom = [
        p
        for p in every
        if not p.codename.startswith(CRUD) and p.codename not in OPERATOR_PERMISSIONS
    ]
    history = list(
        Permission.objects.filter(
            Q(content_type__app_label="django_fsm_log") | Q(content_type__app_label="reversion"),
            codename__startswith="view_",
        )
    )
    return {
        VIEWER: view + history,
        OPERATOR: view + history + edit + operator_only,
        APPROVER: view + history + custom,
    }


class Command(BaseCommand):
    help = "Create or update the Operator, Approver and Viewer groups and their permissions."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            for name, permissions in role_permissions().items():
                group, created = Group.objects.get_or_create(name=name)
                group.permissions.set(permissions)
                self.stdout.write(
                    f"{'created' if created else 'updated'} {name}: {len(permissions)} permissions"
                )

import datetime as dt
import json
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from activities.definitions import gameplays, import_definition, parse_text
from activities.models import Activity
from core.errors import GambitError
from core.models import ApiScope, StorefrontKey
from core.timezones import to_local

from ._output import command_error

# The first demo (quiz -> lottery, the curl below fires its event), then every other gameplay's
# shipped definition.
DEMO_FILE = gameplays.SHIPPED / "quiz-lottery.yaml"
DEMO_KEY_NAME = "demo"
# The demo fires events and reads their results, nothing more.
DEMO_KEY_SCOPES = [ApiScope.EVENTS.value]
DEMO_DAYS = 30


class Command(BaseCommand):
    help = (
        "Create the demo activities, one per shipped gameplay (running, window opened from "
        "today), and print a fresh demo API key with a ready-to-paste curl command for the quiz "
        "-> lottery demo. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        others = [path for path in gameplays.shipped_documents() if path != DEMO_FILE]
        for path in [DEMO_FILE, *others]:
            self._seed(parse_text(path.read_bytes()))
        # A key is stored hashed and shown once, so every run issues a fresh one and revokes
        # the previous demo key: there is always exactly one live demo key.
        with transaction.atomic():
            StorefrontKey.objects.filter(name=DEMO_KEY_NAME, revoked=False).update(revoked=True)
            _key, raw = StorefrontKey.objects.create_key(name=DEMO_KEY_NAME, scopes=DEMO_KEY_SCOPES)
        body = {"channel": "quiz.completed", "customer": "demo-customer", "payload": {"score": 80}}
        url = options["base_url"].rstrip("/") + reverse("api:event-list")
        self.stdout.write(
            _("Demo API key (shown once): %(key)s") % {"key": raw}
            + " "
            + _("(scopes: %(scopes)s)") % {"scopes": ", ".join(DEMO_KEY_SCOPES)}
        )
        self.stdout.write(_("Try it:"))
        self.stdout.write(
            f"curl -X POST {url} \\\n"
            f"  -H 'Authorization: Api-Key {raw}' \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            f"  -H 'Idempotency-Key: demo-{uuid.uuid4()}' \\\n"
            "  -H 'Prefer: wait=5' \\\n"
            f"  -d '{json.dumps(body)}'"
        )

    def _seed(self, document: dict[str, Any]) -> None:
        activity = Activity.objects.filter(code=document["code"]).first()
        if activity is None:
            today = to_local(timezone.now(), document["timezone"]).date()
            last_day = today + dt.timedelta(days=DEMO_DAYS)
            document["starts_at"] = f"{today.isoformat()}T00:00:00"
            document["ends_at"] = f"{last_day.isoformat()}T23:59:59"
            try:
                activity = import_definition(
                    document=document, launch_bypassing_review_by="manage.py seed_demo"
                )
            except GambitError as error:
                raise command_error(error) from None
            self.stdout.write(
                _("Created activity %(code)s (%(starts)s to %(ends)s, %(zone)s): %(state)s.")
                % {
                    "code": activity.code,
                    "starts": document["starts_at"],
                    "ends": document["ends_at"],
                    "zone": activity.timezone,
                    "state": activity.state,
                }
            )
        else:
            self.stdout.write(
                _("Activity %(code)s already exists: %(state)s.")
                % {"code": activity.code, "state": activity.state}
            )

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from activities.definitions import dump_definition, export_definition
from activities.models import Activity


class Command(BaseCommand):
    help = "Print an activity as a definition document (YAML by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code")
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")

    def handle(self, *args: Any, **options: Any) -> None:
        activity = (
            Activity.objects.select_related("template", "segment")
            .filter(code=options["code"])
            .first()
        )
        if activity is None:
            raise CommandError(_("There is no activity %(code)s.") % {"code": options["code"]})
        document = export_definition(activity=activity)
        self.stdout.write(dump_definition(document, format=options["format"]), ending="")

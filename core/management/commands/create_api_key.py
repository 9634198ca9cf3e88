from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from core.models import ALL_SCOPES, StorefrontKey


def parse_scopes(text: str) -> list[str]:
    scopes = [scope.strip() for scope in text.split(",") if scope.strip()]
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
    if unknown or not scopes:
        raise CommandError(
            _("Unknown scopes %(unknown)s; use a comma-separated list of %(scopes)s.")
            % {"unknown": ", ".join(unknown) or "(none)", "scopes": ", ".join(ALL_SCOPES)}
        )
    return list(dict.fromkeys(scopes))


class Command(BaseCommand):
    help = "Create a storefront API key and print it (it is shown this once only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated, from {', '.join(ALL_SCOPES)}: a key can do nothing else.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if not name or len(name) > 50:
            raise CommandError(_("Give the key a name of 1 to 50 characters."))
        scopes = parse_scopes(options["scopes"])
        key, raw = StorefrontKey.objects.create_key(name=name, scopes=scopes)
        self.stdout.write(
            _("Created API key %(name)r (prefix %(prefix)s) with scopes: %(scopes)s.")
            % {"name": key.name, "prefix": key.prefix, "scopes": ", ".join(scopes)}
        )
        self.stdout.write(_("Store it now; it is not shown again:"))
        self.stdout.write(raw)

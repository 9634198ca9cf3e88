import getpass
import os
import socket
import stat
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from activities.definitions import import_definition, parse_text
from activities.definitions.loading import MAX_DOCUMENT_BYTES
from core.errors import GambitError

from ._output import command_error


def read_document(path: str) -> bytes:
    """The file's bytes, refusing anything but a regular file (a FIFO or /dev/zero would
    never end) and anything over the size limit (read at most one byte past it)."""
    if path == "-":
        return sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise CommandError(_("%(path)s is not a regular file.") % {"path": path})
            return handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise CommandError(
            _("Cannot read %(path)s: %(error)s") % {"path": path, "error": error.strerror}
        ) from None


class Command(BaseCommand):
    help = "Import an activity definition document (YAML or JSON); '-' reads standard input."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--launch",
            action="store_true",
            help=(
                "Schedule the activity, and start it now when its window is already open. This "
                "bypasses four-eyes review; the bypass is recorded with who ran the command."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            activity = import_definition(
                document=parse_text(read_document(options["file"])),
                launch_bypassing_review_by=(
                    f"import_activity --launch ({getpass.getuser()}@{socket.gethostname()})"
                    if options["launch"]
                    else ""
                ),
            )
        except GambitError as error:
            raise command_error(error) from None
        if options["launch"]:
            self.stdout.write(
                _("Launched without four-eyes review; the bypass is recorded on the activity.")
            )
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Imported activity %(code)s (template %(template)s, %(benefits)d benefits, "
                    "%(chains)d chains): %(state)s."
                )
                % {
                    "code": activity.code,
                    "template": activity.template.code,
                    "benefits": activity.benefits.count(),
                    "chains": activity.template.chains.count(),
                    "state": activity.state,
                }
            )
        )

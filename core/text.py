"""Text that identifies something (a customer's or an order's id): printable, never blank."""

import re

# C0 controls and DEL: a NUL cannot be stored by PostgreSQL at all, and the others make ids that
# look equal on screen while differing in the database.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None

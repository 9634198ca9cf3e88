"""Text that identifies something (a customer's or an order's id): printable, never blank."""

import re

# C0 controls and DEL: a NUL cannot be stored by PostgreSQL at all, and the others make ids that
# look equal on screen while differing in the database.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(cell: str) -> str:
    """The cell as a spreadsheet shows it without running it: a leading apostrophe, which
    spreadsheets hide, before a formula prefix. `unescape_formula` undoes it on import."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def unescape_formula(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_PREFIXES) else cell

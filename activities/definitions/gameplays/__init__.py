"""The gameplay library: parameterised templates an operator launches from one form.

One module per gameplay; importing this package registers them (see `base.py` for the
contract and docs/gameplays.md for each gameplay). Each also ships a definition document,
`<code>.yaml` beside it, built from its defaults.
"""

from pathlib import Path

from . import (  # noqa: F401  (registers)
    assist,
    checkin_streak,
    group_buy,
    leaderboard,
    quiz_lottery,
    tasks,
    vote,
)
from .base import Gameplay, all_gameplays, get
from .creating import build_document, create_from_gameplay, parameter_errors

SHIPPED = Path(__file__).resolve().parent


def shipped_documents() -> list[Path]:
    """The definition document shipped with each gameplay, in gameplay order."""
    return [SHIPPED / f"{gameplay.code}.yaml" for gameplay in all_gameplays()]


__all__ = [
    "Gameplay",
    "all_gameplays",
    "build_document",
    "create_from_gameplay",
    "get",
    "parameter_errors",
    "shipped_documents",
]

from collections.abc import Iterable
from dataclasses import dataclass


class Rejected(Exception):
    """A processor's verdict that the run ends here, with the reason shown to the storefront."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StepFailed(Exception):
    """A step could not do its work; the step's error policy decides what happens next."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True)
class ConfigError:
    """One problem in a step's configuration; `path` is a JSON path inside the config."""

    path: str
    message: str
    code: str = "invalid_config"


def join_path(prefix: str, path: str) -> str:
    """`config` + `prizes[0].weight` -> `config.prizes[0].weight`; `[2]` joins without a dot."""
    if not path:
        return prefix
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def prefixed(errors: Iterable[ConfigError], prefix: str) -> list[ConfigError]:
    return [ConfigError(join_path(prefix, e.path), e.message, e.code) for e in errors]


def error_details(errors: Iterable[ConfigError]) -> list[dict[str, str]]:
    return [{"path": e.path, "message": e.message, "code": e.code} for e in errors]

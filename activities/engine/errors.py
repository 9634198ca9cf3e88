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

"""Which live activities send a notification template: asked here, answered by the activities app.

A chain's `notify` step names a template by its code, and the activities app sits above this
one, so the template rules (`services.templates`) cannot import it to ask which scheduled,
running or paused activities send a template. The activities app registers the answer at
start-up (AppConfig.ready), as it registers the recorder of `core.system_events`.

The freeze itself stays on this side rather than in the activities app: a template is edited
here, so one check in its own service covers every path an edit can take (the admin, a shell,
a script), and no activity code has to remember to call it.
"""

from __future__ import annotations

from typing import Protocol

from django.core.exceptions import ImproperlyConfigured


class LiveActivitiesLookup(Protocol):
    def __call__(self, *, template_code: str) -> list[str]: ...


_lookup: LiveActivitiesLookup | None = None


def register_lookup(lookup: LiveActivitiesLookup) -> None:
    # One lookup per process, set once at start-up.
    global _lookup
    _lookup = lookup


def live_activities_sending(*, template_code: str) -> list[str]:
    """Codes of the scheduled, running or paused activities whose chains send the template."""
    if _lookup is None:
        # Answering "none" would let an operator edit a template a running activity sends.
        raise ImproperlyConfigured(
            "No live-activities lookup is registered: the activities app must be installed."
        )
    return _lookup(template_code=template_code)

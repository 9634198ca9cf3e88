"""Configuration writes: the one place chains, steps, templates and an activity's own settings
are validated and saved. The admin, the definition importer and the tests all come here.

Caches never serve a stale configuration because every write bumps a version stamp in the same
transaction: `StrategyTemplate.version` for chains and steps, `Activity.config_version` for
benefits, window and budget. Compiled chains and activity configs are cached under those stamps
(activities.engine.cache), and the stamps are read fresh for every event.

A template used by a running activity is frozen: an edit would change a live campaign under the
customers' feet. The operator duplicates the template, edits the copy and points the next
activity (or this one, once paused) at it.

- `errors`: how a write refuses (every problem, with its path and code).
- `emit_graph`: emit steps as edges between channels; loops are refused.
- `templates`: a template's chains and steps.
- `activity`: an activity's own settings and its benefits.

Two checks live below this package, so that what they serve can import them without importing
every configuration write: whether an activity can run (`activities.services.readiness`, asked
by the lifecycle, which `activity` calls to move a window) and a step's shape
(`activities.engine.steps`, asked by the split processor for its nested steps). They and the
error helpers are re-exported here with the writes, as this module's public names.
"""

from activities.engine.errors import error_details, join_path, prefixed
from activities.engine.steps import check_step_shape
from activities.services.readiness import (
    CHECKED_STATES,
    check_activity,
    missing_benefit_error,
    timezone_errors,
    window_errors,
)

from .activity import CLOSED_STATES, UNSET, delete_benefit, save_benefit, update_activity
from .emit_graph import (
    EmitEdge,
    emitted_by,
    emitting_processors,
    find_loop,
    lock_emit_graph,
    loop_error,
    stored_emit_edges,
)
from .errors import TemplateFrozen
from .templates import (
    check_step,
    delete_chain,
    delete_step,
    duplicate_template,
    ensure_channel,
    mark_credited_channels,
    reorder_steps,
    save_chain,
    save_step,
)

__all__ = [
    "CHECKED_STATES",
    "CLOSED_STATES",
    "UNSET",
    "EmitEdge",
    "TemplateFrozen",
    "check_activity",
    "check_step",
    "check_step_shape",
    "delete_benefit",
    "delete_chain",
    "delete_step",
    "duplicate_template",
    "emitted_by",
    "emitting_processors",
    "ensure_channel",
    "error_details",
    "find_loop",
    "join_path",
    "lock_emit_graph",
    "loop_error",
    "mark_credited_channels",
    "missing_benefit_error",
    "prefixed",
    "reorder_steps",
    "save_benefit",
    "save_chain",
    "save_step",
    "stored_emit_edges",
    "timezone_errors",
    "update_activity",
    "window_errors",
]

"""The emit graph: the channels whose events make events on other channels (emit steps).

Events must not loop, so every write that adds an edge first takes one advisory lock
(`lock_emit_graph`) and refuses the edge that would close a loop (`find_loop`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils.translation import gettext as _

from activities.engine import registry
from activities.engine.errors import ConfigError
from activities.models import ChainStep

# Any fixed number shared by every session: serialises edits that add emit edges, so two
# concurrent saves cannot each add one half of a cycle.
_EMIT_GRAPH_LOCK = 0x6A6D6974


@dataclass(frozen=True)
class EmitEdge:
    """An emit step: events on `source` make events on `target`."""

    source: str
    target: str


def emitting_processors() -> list[str]:
    return [cls.key for cls in registry.all_processors() if cls.can_emit()]


def stored_emit_edges(
    *, exclude_steps: Iterable[int] = (), exclude_chains: Iterable[int] = ()
) -> list[EmitEdge]:
    """Every emit edge saved in any template: a channel's events run every running activity
    bound to it, whatever its template, so a loop through two templates is still a loop."""
    rows = (
        ChainStep.objects.filter(processor__in=emitting_processors())
        .exclude(pk__in=list(exclude_steps))
        .exclude(chain_id__in=list(exclude_chains))
        .values_list("processor", "config", "chain__channel__code")
    )
    edges: list[EmitEdge] = []
    for key, config, source in rows:
        processor_class = registry.get(key)
        if processor_class is None or processor_class.check_config(config):
            # Written around these services; check_activity refuses to launch it.
            continue
        edges.extend(
            EmitEdge(source, target) for target in processor_class.emitted_channels(config)
        )
    return edges


def find_loop(edges: Iterable[EmitEdge], source: str, target: str) -> list[str] | None:
    """The loop that a new edge source -> target closes, as channel codes, or None."""
    if source == target:
        return [source, target]
    following: dict[str, set[str]] = {}
    for edge in edges:
        following.setdefault(edge.source, set()).add(edge.target)
    came_from: dict[str, str] = {}
    queue = deque([target])
    seen = {target}
    while queue:
        channel = queue.popleft()
        for nxt in sorted(following.get(channel, ())):
            if nxt in seen:
                continue
            came_from[nxt] = channel
            if nxt == source:
                path = [source]
                while path[-1] != target:
                    path.append(came_from[path[-1]])
                return [source, *reversed(path)]
            seen.add(nxt)
            queue.append(nxt)
    return None


def loop_error(path: str, loop: list[str]) -> ConfigError:
    return ConfigError(
        path,
        _(
            "Emitting to %(target)s would make events loop: %(loop)s. Remove one emit step "
            "of the loop first."
        )
        % {"target": loop[1], "loop": " -> ".join(loop)},
        "emit_cycle",
    )


def lock_emit_graph() -> None:
    """Held until the transaction ends by every write that adds emit edges."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EMIT_GRAPH_LOCK])


def emitted_by(*, processor: str, config: Any) -> set[str]:
    """Channels a schema-valid step emits to."""
    processor_class = registry.get(processor)
    return processor_class.emitted_channels(config) if processor_class else set()

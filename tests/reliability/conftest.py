"""The reliability suite runs on its own (`make reliability`, `.ci/run`): `pytest tests` skips it
unless `-m reliability` is given, so the default run stays short and nothing runs twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import redis_server, start_stack  # noqa: F401  (fixtures)

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "reliability" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="the chaos soak runs with -m reliability (make reliability)")
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(skip)

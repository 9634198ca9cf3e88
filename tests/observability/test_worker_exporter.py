"""A worker host's metrics exporter has no token check, so it listens on loopback unless the
deployment names another interface."""

from __future__ import annotations

from typing import Any

import pytest

from observability import metrics


@pytest.fixture
def started(monkeypatch, tmp_path) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def record(port: int, **kwargs: Any) -> None:
        calls.append({"port": port, **kwargs})

    monkeypatch.setattr(metrics, "start_http_server", record)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("GAMBIT_WORKER_METRICS_PORT", "9808")
    monkeypatch.delenv("GAMBIT_WORKER_METRICS_ADDRESS", raising=False)
    return calls


def test_the_worker_exporter_listens_on_loopback_by_default(started):
    metrics._serve_worker_metrics()

    assert [(call["port"], call["addr"]) for call in started] == [(9808, "127.0.0.1")]


def test_the_deployment_may_name_the_interface(started, monkeypatch):
    monkeypatch.setenv("GAMBIT_WORKER_METRICS_ADDRESS", "10.0.0.7")

    metrics._serve_worker_metrics()

    assert [(call["port"], call["addr"]) for call in started] == [(9808, "10.0.0.7")]

"""The composition root: what `MonitorServer` builds, and its start and stop order."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from monitor.core.settings import (
    AnalysisSettings,
    KubernetesSettings,
    MonitorSettings,
    OperatorSettings,
    StoreSettings,
)
from monitor.loops.background import BackgroundLoops
from monitor.loops.leadership import Always
from monitor.server import MonitorServer


def settings_in(tmp_path: Path) -> MonitorSettings:
    """No worker process, no operator, no cluster, loops that would wait an hour."""
    return MonitorSettings(
        store=StoreSettings(db_path=tmp_path / "m.db", retention_interval_seconds=3600),
        analysis=AnalysisSettings(worker=False, interval_seconds=3600),
        operator=OperatorSettings(enabled=False, reconcile_interval_seconds=3600),
        kubernetes=KubernetesSettings(access="off", namespace="default"),
    )


class RecordingLoops(BackgroundLoops):
    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def stop(self, timeout_seconds: float = 30.0) -> None:
        self.events.append("loops stopped")
        super().stop(timeout_seconds)


class RecordingLeader(Always):
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def start(self) -> None:
        self.events.append("leader started")

    def stop(self) -> None:
        self.events.append("leader stopped")


def test_the_server_opens_its_store_serves_it_and_closes_it_last(tmp_path: Path) -> None:
    server = MonitorServer(settings_in(tmp_path))
    events: list[str] = []
    server.leader, server.loops = RecordingLeader(events), RecordingLoops(events)
    assert TestClient(server.app).get("/readyz").json() == {"status": "starting"}
    with TestClient(server.app) as client:
        assert client.get("/readyz").json() == {"status": "ok"}
        assert client.get("/v1/models").json() == []
        assert events == ["leader started"]
    assert events == ["leader started", "loops stopped", "leader stopped"]
    with pytest.raises(RuntimeError, match="closed"):
        server.store.models()


def test_a_given_store_is_served_and_left_open(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    given = MonitorServer(settings).store
    server = MonitorServer(settings, given, background=False)
    with TestClient(server.app) as client:
        assert client.get("/readyz").json() == {"status": "ok"}
    assert given.models() == []
    assert server.loops.passes == {} and not server.started
    given.close()

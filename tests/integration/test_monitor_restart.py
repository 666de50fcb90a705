"""Acknowledged data survives the monitor being killed (-9) mid-stream and restarted, on both
backends (a SQLite file; a real PostgreSQL server via MONITOR_DATABASE_URL)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.store import open_store
from tests.support.monitor import RoleAuth, register_as, running_monitor
from tests.support.postgres import pg_cluster, pg_database_url  # noqa: F401 (fixtures)


@dataclass(frozen=True)
class Where:
    """The monitor's database as its settings name it (and the env that says so)."""

    db_path: Path
    database_url: str | None = None

    def env(self) -> dict[str, str]:
        return {"MONITOR_DATABASE_URL": self.database_url} if self.database_url else {}


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    url = request.getfixturevalue("pg_database_url") if request.param == "postgres" else None
    return Where(tmp_path / "monitor.db", url)


def batch(n: int) -> list[dict[str, Any]]:
    return [
        {
            "prediction_id": uuid.uuid4().hex,
            "model": "rain_forecast",
            "version": "v-restart",
            "timestamp": "2013-08-01T00:00:00+00:00",
            "features": {"temp": float(i), "origin": "JFK"},
            "probability": 0.5,
            "predicted_class": 1,
        }
        for i in range(n)
    ]


def stored_ids(where: Where) -> set[str]:
    with open_store(where) as store:
        frame = store.records_frame("rain_forecast", "v-restart")
    return set(frame["prediction_id"])


def test_kill_9_mid_stream_loses_no_acknowledged_record(
    tmp_path: Path, where: Where, registrations: dict[str, Any]
) -> None:
    acked: list[str] = []
    sent: list[str] = []
    acked_labels: list[str] = []
    stop = threading.Event()
    enough = threading.Event()

    with running_monitor(tmp_path, db_path=where.db_path, env=where.env()) as monitor:
        register_as(monitor, registrations["good"], "v-restart")

        def send() -> None:
            with httpx.Client(base_url=monitor.url, timeout=10, auth=RoleAuth(monitor)) as client:
                while not stop.is_set():
                    records = batch(200)
                    ids = [r["prediction_id"] for r in records]
                    sent.extend(ids)
                    try:
                        resp = client.post("/v1/records", json={"records": records})
                        if resp.status_code == 202:
                            acked.extend(ids)
                        labels = [{"prediction_id": ids[0], "label": 1}]
                        if client.post("/v1/labels", json={"labels": labels}).status_code == 202:
                            acked_labels.append(ids[0])
                    except httpx.HTTPError:
                        return  # the server is gone: what was not acknowledged may be lost
                    if len(acked) >= 4000:
                        enough.set()

        sender = threading.Thread(target=send)
        sender.start()
        try:
            assert enough.wait(60), "the sender never got 4000 records acknowledged"
            monitor.kill()  # while the sender is still posting
        finally:
            stop.set()
            sender.join(30)

        monitor.start()  # same port, same database
        after = stored_ids(where)
        assert set(acked) <= after, f"{len(set(acked) - after)} acknowledged records lost"
        assert after <= set(sent)
        with open_store(where) as store:
            labelled = store.records_frame("rain_forecast", "v-restart").set_index("prediction_id")[
                "label"
            ]
        assert all(labelled[pid] == 1 for pid in acked_labels)

        # and the restarted server carries on: idempotent retry of the whole history
        with httpx.Client(base_url=monitor.url, timeout=30, auth=RoleAuth(monitor)) as client:
            more = batch(100)
            assert client.post("/v1/records", json={"records": more}).json()["accepted"] == 100
            versions = {v["version"]: v for v in client.get("/v1/models").json()}
        assert versions["v-restart"]["records"] == len(after) + 100
    if where.database_url:  # the monitor kept its data on the server, not in a file
        assert not where.db_path.exists()


def test_a_clean_restart_keeps_everything(
    tmp_path: Path, where: Where, registrations: dict[str, Any]
) -> None:
    with running_monitor(tmp_path, db_path=where.db_path, env=where.env()) as monitor:
        register_as(monitor, registrations["good"], "v-restart")
        records = batch(500)
        with httpx.Client(base_url=monitor.url, timeout=30, auth=RoleAuth(monitor)) as client:
            assert client.post("/v1/records", json={"records": records}).status_code == 202
        # SIGTERM: uvicorn shuts down cleanly, then re-raises the signal (exit -15)
        assert monitor.stop() in (0, -15)
        assert "Application shutdown complete" in monitor.log()
        monitor.start()
        with httpx.Client(base_url=monitor.url, timeout=30, auth=RoleAuth(monitor)) as client:
            versions = {v["version"]: v for v in client.get("/v1/models").json()}
            assert versions["v-restart"]["records"] == 500
            again = client.post("/v1/records", json={"records": records}).json()
        assert again == {"accepted": 0, "duplicates": 500}

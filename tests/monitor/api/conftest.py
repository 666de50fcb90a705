"""The monitor's app in-process (FastAPI's TestClient) over a real SQLite store in tmp_path,
without the background loops or the analysis worker; one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from monitor.core.settings import AnalysisSettings, MonitorSettings, StoreSettings, TokenSettings
from monitor.server import MonitorServer
from monitor.store.sqlite import SqliteStore

TOKENS = {"operator": "operator-token", "reader": "reader-token", "predictor": "predictor-token"}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "m.db") as st:
        yield st


@pytest.fixture
def client(tmp_path: Path, store: SqliteStore) -> Iterator[TestClient]:
    settings = MonitorSettings(
        store=StoreSettings(db_path=tmp_path / "m.db"),
        analysis=AnalysisSettings(worker=False),
        tokens=TokenSettings(
            operator=SecretStr(TOKENS["operator"]),
            reader=SecretStr(TOKENS["reader"]),
            predictor=SecretStr(TOKENS["predictor"]),
        ),
    )
    with TestClient(MonitorServer(settings, store, background=False).app) as c:
        yield c

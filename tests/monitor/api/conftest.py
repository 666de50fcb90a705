"""The monitor's app in-process (FastAPI's TestClient) over a real SQLite store in tmp_path,
without the background loops or the analysis worker; one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from monitor.api.app import create_app
from monitor.core.settings import MonitorSettings
from monitor.store.sqlite import Store

TOKENS = {"operator": "operator-token", "reader": "reader-token", "predictor": "predictor-token"}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "m.db") as st:
        yield st


@pytest.fixture
def client(tmp_path: Path, store: Store) -> Iterator[TestClient]:
    settings = MonitorSettings(
        db_path=tmp_path / "m.db",
        analysis_worker=False,
        operator_token=SecretStr(TOKENS["operator"]),
        reader_token=SecretStr(TOKENS["reader"]),
        predictor_token=SecretStr(TOKENS["predictor"]),
    )
    with TestClient(create_app(settings, store=store, background=False)) as c:
        yield c

"""The service over a real SQLite store in tmp_path; versions registered straight into the
store (no vetting child) unless a test is about registration itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.store.sqlite import SqliteStore
from tests.support.candidates import register_bare

MODEL = "m"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "m.db") as st:
        yield st


def register(store: SqliteStore, version: str) -> None:
    register_bare(store, MODEL, version)


def audit_of(store: SqliteStore, kind: str) -> list[dict[str, Any]]:
    return store.audit(MODEL, kind)

"""The service over a real SQLite store in tmp_path; versions registered straight into the
store (no vetting child) unless a test is about registration itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.store.sqlite import Store
from tests.support.candidates import register_bare

MODEL = "m"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "m.db") as st:
        yield st


def register(store: Store, version: str) -> None:
    register_bare(store, MODEL, version)


def audit_of(store: Store, kind: str) -> list[dict[str, Any]]:
    return store.audit(MODEL, kind)

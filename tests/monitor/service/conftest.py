"""The service over a real SQLite store in tmp_path; versions registered straight into the
store (no vetting child) unless a test is about registration itself."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.memory.candidates import CandidateChunk
from monitor.store.sqlite import Store

MODEL = "m"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "m.db") as st:
        yield st


def register(store: Store, version: str, learner: str = "xgboost") -> None:
    store.register(
        {
            "model": MODEL,
            "version": version,
            "learner": learner,
            "schema": {"features": [{"name": "x"}]},
            "reference": [],
            "artifact": base64.b64encode(version.encode()).decode(),
        }
    )


def audit_of(store: Store, kind: str) -> list[dict[str, Any]]:
    return store.audit(MODEL, kind)


def worse_chunks(baseline: str = "v1") -> list[CandidateChunk]:
    """Four chunks on which a candidate scores 0.06 below `baseline` (a Worse verdict)."""
    return [
        CandidateChunk(
            chunk_index=i,
            baseline_version=baseline,
            rows=500,
            first_seq=500 * i + 1,
            last_seq=500 * (i + 1),
            candidate_estimate=0.80 + d,
            candidate_sampling_error=0.01,
            baseline_estimate=0.86,
            baseline_sampling_error=0.01,
            rank_correlation=0.9,
            analysed_at="2024-01-02T00:00:00+00:00",
        )
        for i, d in enumerate((0.001, -0.002, 0.0, 0.002))
    ]

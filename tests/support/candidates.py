"""Candidate test data written straight into a store: a bare registration (no vetting child,
no artifact that loads) and same-rows chunks that make a Worse verdict."""

from __future__ import annotations

import base64
from typing import Any

from monitor.memory.candidates import CandidateChunk


def register_bare(store: Any, model: str, version: str) -> None:
    """Register `model:version` with a one-feature schema and no reference rows."""
    store.register(
        {
            "model": model,
            "version": version,
            "schema": {"features": [{"name": "x"}]},
            "reference": [],
            "artifact": base64.b64encode(version.encode()).decode(),
        }
    )


def worse_chunks(baseline: str = "v1") -> list[CandidateChunk]:
    """Four chunks of 500 rows on which a candidate scores 0.06 below `baseline`: Worse."""
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

"""Rows the store tests write: records, registrations and chunk evidence of model `m`."""

from __future__ import annotations

import base64
from typing import Any

from monitor.core.evidence import ChunkEvidence, Estimate, FeatureDrift


def record(i: int, version: str = "v1", **over: Any) -> dict[str, Any]:
    rec = {
        "prediction_id": f"p{i:06d}",
        "model": "m",
        "version": version,
        "timestamp": f"2013-07-01T{i % 24:02d}:00:00Z",
        "features": {"temp": 60.0 + i, "gust": None if i % 2 else 12.5, "origin": "EWR"},
        "probability": (i % 100) / 100,
        "predicted_class": i % 2,
    }
    rec.update(over)
    return rec


def registration(version: str = "v1", description: str = "") -> dict[str, Any]:
    return {
        "model": "m",
        "version": version,
        "learner": "xgboost",
        "release": "good",
        "description": description,
        "schema": {"features": [{"name": "temp"}, {"name": "gust"}, {"name": "missing_f"}]},
        "reference": [{"temp": 1.0, "label": 1, "probability": 0.5}],
        "artifact": base64.b64encode(b"booster-bytes").decode(),
        "artifact_format": "xgboost-ubj",
    }


def evidence(index: int, value: float, version: str = "v1") -> ChunkEvidence:
    return ChunkEvidence(
        model="m",
        version=version,
        chunk_index=index,
        rows=500,
        first_seq=index * 500 + 1,
        last_seq=(index + 1) * 500,
        start_time="2013-07-01T00:00:00+00:00",
        end_time="2013-07-08T00:00:00+00:00",
        estimated={"roc_auc": Estimate(value, value - 0.05, value + 0.05, alert=False)},
        drift=[FeatureDrift("temp", "jensen_shannon", 0.2, 0.1, True)],
        drift_ranking=[("temp", 0.8)],
    )

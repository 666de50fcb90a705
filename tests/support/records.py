"""Inference records as a predictor ships them, scored by a registration's own booster."""

from __future__ import annotations

from typing import Any

import pandas as pd
import xgboost as xgb

from bentos.training.data import LABEL_COLUMN, TIME_COLUMN, Split, records


def served(
    split: Split, reg: Any, start: int, count: int, tag: str
) -> tuple[list[dict], list[dict]]:
    """Inference records (as the predictor ships them) and their labels, for replay rows."""
    schema = reg.schema
    rows = split.replay[schema.valid_rows(split.replay)].iloc[start : start + count]
    booster = xgb.Booster()
    booster.load_model(bytearray(reg.artifact_bytes()))
    scores = booster.inplace_predict(schema.to_matrix(rows)).astype(float)
    feats = records(rows, schema)
    out, labels = [], []
    for i, (ts, score, label) in enumerate(
        zip(rows[TIME_COLUMN], scores, rows[LABEL_COLUMN], strict=True)
    ):
        pid = f"{tag}-{start + i}"
        out.append(
            {
                "prediction_id": pid,
                "model": reg.model,
                "version": reg.version,
                "timestamp": pd.Timestamp(ts).isoformat(),
                "features": feats[i],
                "probability": float(score),
                "predicted_class": int(score >= schema.threshold),
            }
        )
        labels.append({"prediction_id": pid, "label": int(label)})
    return out, labels

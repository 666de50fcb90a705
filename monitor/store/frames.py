"""Turning stored inference rows into the DataFrame analysis works on (both backends).

Separate from the stores because this is the hot path of every analysis cycle (>= 100k rows/s
is the target): the features of all rows are parsed by one call of pydantic-core's JSON
parser over the joined array text (measured: 2x one `json.loads`, far more than one per row).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic_core import from_json

FRAME_BATCH_ROWS = 50_000  # rows turned into a DataFrame at a time (a backend's `_row_batches`)

BASE_COLUMNS = (
    "seq",
    "prediction_id",
    "timestamp",
    "event_time",
    "probability",
    "predicted_class",
    "label",
)


def records_to_frame(rows: list[tuple[Any, ...]], feature_names: list[str]) -> pd.DataFrame:
    """Rows of (seq, id, ts_us, event_us, probability, class, label, features JSON) -> a
    DataFrame.

    A feature that is null in every row comes out as a float column of NaN (missing).
    """
    if not rows:
        frame = pd.DataFrame(
            {
                "seq": pd.Series([], dtype="int64"),
                "prediction_id": pd.Series([], dtype="object"),
                "timestamp": pd.Series([], dtype="datetime64[us, UTC]"),
                "event_time": pd.Series([], dtype="datetime64[us, UTC]"),
                "probability": pd.Series([], dtype="float64"),
                "predicted_class": pd.Series([], dtype="int64"),
                "label": pd.Series([], dtype="Int64"),
            }
        )
        for name in feature_names:
            if name not in frame.columns:
                frame[name] = pd.Series([], dtype="float64")
        return frame
    seq, pid, ts_us, event_us, prob, cls, label, feats = zip(*rows, strict=True)
    features = pd.DataFrame.from_records(from_json("[" + ",".join(feats) + "]"))
    base = pd.DataFrame(
        {
            "seq": np.asarray(seq, dtype=np.int64),
            "prediction_id": np.asarray(pid, dtype=object),
            "timestamp": pd.to_datetime(np.asarray(ts_us, dtype=np.int64), unit="us", utc=True),
            "event_time": pd.to_datetime(np.asarray(event_us, dtype=np.int64), unit="us", utc=True),
            "probability": np.asarray(prob, dtype=np.float64),
            "predicted_class": np.asarray(cls, dtype=np.int64),
            "label": pd.array(label, dtype="Int64"),
        }
    )
    features = features.drop(columns=[c for c in BASE_COLUMNS if c in features.columns])
    ordered = [n for n in feature_names if n in features.columns]
    ordered += [c for c in features.columns if c not in ordered]
    for col in ordered:  # a feature that was null in every row is numeric and missing
        if features[col].dtype == object and features[col].isna().all():
            features[col] = features[col].astype("float64")
    frame = pd.concat([base, features[ordered]], axis=1)
    for name in feature_names:  # a feature never received is all missing, not absent
        if name not in frame.columns:
            frame[name] = np.nan
    return frame

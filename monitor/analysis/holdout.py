"""Hold-out metrics the monitor computes itself: a registration's own figures are not trusted.

Why a module of its own: the release gate compares a new version's hold-out metric with the
known-good's (docs/design.md#why-a-release-gate-on-the-shared-hold-out). A registration
carries the metrics its packager computed, and anyone holding the predictor token could
claim ROC AUC 0.99. So the monitor scores the reference rows with the registered booster
itself (`holdout_metrics`): once at registration, in the isolated child process
(`monitor.analysis.artifact`), and for the gate on the known-good's reference rows, so both
sides of the comparison are measured on the same labelled rows (`gate_holdout`).
The metrics are those of the packager (`bentos/cli/metrics.py`): roc_auc, pr_auc, f1 at the
schema's threshold, brier, rows, positive_rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score

from contract.schema import ModelSchema

# Largest |reference probability - re-score| still "the same score" (the score-parity rule's
# default tolerance, docs/design.md#the-policy) and the share of rows allowed beyond it.
SCORE_TOLERANCE = 1e-4
MAX_DISAGREEING_SHARE = 0.01


def booster_of(raw: bytes) -> Any:
    """An XGBoost booster from UBJSON/JSON bytes (never pickle). Only call this in-process
    for an artifact that `monitor.analysis.artifact.vet` has already loaded in isolation."""
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    return booster


def scores(booster: Any, schema: ModelSchema, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    frame = pd.DataFrame.from_records(list(rows))
    for name in schema.feature_names:
        if name not in frame:
            frame[name] = np.nan
    return np.asarray(booster.inplace_predict(schema.to_matrix(frame)), dtype=float)


def metrics_of(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | None]:
    y = np.asarray(y).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "positive_rate": float(y.mean()) if len(y) else None,
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "f1": float(f1_score(y, p >= threshold, zero_division=0)),
        "brier": float(brier_score_loss(y, p)) if len(y) else None,
    }


def holdout_metrics(
    booster: Any, schema: ModelSchema, reference: Sequence[Mapping[str, Any]]
) -> dict[str, float | None]:
    """`booster`'s metrics on labelled `reference` rows (label column = the schema's)."""
    y = np.array([row[schema.label.name] for row in reference], dtype=int)
    return metrics_of(y, scores(booster, schema, reference), schema.threshold)


def disagreeing_rows(
    booster: Any, schema: ModelSchema, reference: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Indices of reference rows whose stated `probability` is not the booster's score."""
    stated = np.array([float(row["probability"]) for row in reference])
    off = np.abs(scores(booster, schema, reference) - stated) > SCORE_TOLERANCE
    return [int(i) for i in np.flatnonzero(off)]


def gate_holdout(
    registration: Mapping[str, Any],
    artifact: bytes,
    on: Mapping[str, Any] | None = None,
) -> dict[str, float | None] | None:
    """The version's hold-out metrics as the release gate uses them: scored by the monitor
    on the reference rows of `on` (the known-good's registration) when those rows carry
    every feature of this version's schema, else on its own reference rows."""
    schema = ModelSchema.model_validate(registration["schema"])
    rows = registration.get("reference") or []
    if on is not None:
        theirs = on.get("reference") or []
        label = schema.label.name
        need = {*schema.feature_names, label}
        if theirs and need <= theirs[0].keys():
            rows = theirs
    if not rows:
        return None
    return holdout_metrics(booster_of(artifact), schema, rows)

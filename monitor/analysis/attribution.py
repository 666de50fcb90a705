"""Attribution drift: how much the model relies on each feature, on the reference and now.

A feature's *reliance* on a set of rows is its mean absolute TreeSHAP contribution, in
log-odds (XGBoost's exact `pred_contribs=True` with the registered booster, the same
artifact the shadow re-scoring uses). The reference's reliance is computed once per fitted
version (`FittedVersion.fit`, saved with the fitted state) on an evenly spaced sample of at
most `REFERENCE_SAMPLE_ROWS` reference rows; a chunk's on an evenly spaced sample of at most
`SAMPLE_ROWS` of its rows. TreeSHAP costs ~50-250 us per row with the shipped ensemble on
one thread, 10-100x a plain prediction: all 4,400 reference rows were a quarter of every
version's first analysis pass, the 1,000 sampled estimate the reference mean to about 1% of
the total reliance (bench/fit_cache.py measures it), ten times finer than the 100 rows a
chunk's figure rests on.

The *attribution shift* of a feature is `(reliance now - reliance on the reference) / total
reliance on the reference`: the share of the model's whole reliance that moved to (> 0) or
away from (< 0) that feature. A feature the model never splits on has reliance exactly 0 and
shift 0, however much its values drift -- which is what the drift ranking uses it for.

Nothing here decides anything: it explains (docs/analysis.md, "Attributions").
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pandas as pd
import xgboost as xgb

from contract.schema import ModelSchema

SAMPLE_ROWS = 100  # rows per chunk explained with TreeSHAP
REFERENCE_SAMPLE_ROWS = 1_000  # reference rows explained, once per fitted version


def contributions(booster: xgb.Booster, x: np.ndarray) -> np.ndarray:
    """Per row and feature, the TreeSHAP contribution in log-odds (the bias column dropped)."""
    if len(x) == 0:
        return np.zeros((0, x.shape[1] if x.ndim == 2 else 0))
    dm = xgb.DMatrix(x, missing=np.nan)
    out = booster.predict(dm, pred_contribs=True, validate_features=False)
    return np.asarray(out, dtype=np.float64)[:, :-1]


def reliance(
    booster: xgb.Booster, schema: ModelSchema, frame: pd.DataFrame, max_rows: int | None = None
) -> dict[str, float]:
    """Mean |contribution| per feature over the rows of `frame`, or over `max_rows` of them
    evenly spaced (the reference: once per fit)."""
    if len(frame) == 0:
        return {}
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.iloc[sample_positions([0, len(frame)], max_rows)[0]]
    means = np.abs(contributions(booster, schema.to_matrix(frame))).mean(axis=0)
    return dict(zip(schema.feature_names, (float(v) for v in means), strict=True))


def reference_reliance(
    booster: xgb.Booster, schema: ModelSchema, reference: pd.DataFrame
) -> dict[str, float]:
    """The reference's reliance, on `REFERENCE_SAMPLE_ROWS` of its rows evenly spaced."""
    return reliance(booster, schema, reference, REFERENCE_SAMPLE_ROWS)


def sample_positions(starts: Sequence[int], per_chunk: int = SAMPLE_ROWS) -> list[np.ndarray]:
    """Per chunk (rows `starts[i]` to `starts[i+1]`), at most `per_chunk` evenly spaced rows."""
    out = []
    for lo, hi in pairwise(starts):
        n = int(hi) - int(lo)
        if n <= per_chunk:
            out.append(np.arange(int(lo), int(hi)))
        else:
            out.append(int(lo) + np.linspace(0, n - 1, per_chunk).round().astype(np.int64))
    return out


def chunk_reliance(
    booster: xgb.Booster,
    schema: ModelSchema,
    frame: pd.DataFrame,
    starts: Sequence[int],
    per_chunk: int = SAMPLE_ROWS,
) -> list[tuple[dict[str, float], int]]:
    """Per chunk: its reliance per feature (on the sampled rows) and how many rows that took.

    One TreeSHAP call for the samples of every chunk together.
    """
    positions = sample_positions(starts, per_chunk)
    picked = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
    if len(picked) == 0:
        return [({}, 0) for _ in positions]
    absolute = np.abs(contributions(booster, schema.to_matrix(frame.iloc[picked])))
    names = schema.feature_names
    out: list[tuple[dict[str, float], int]] = []
    at = 0
    for pos in positions:
        part = absolute[at : at + len(pos)]
        at += len(pos)
        if len(part) == 0:
            out.append(({}, 0))
            continue
        means = part.mean(axis=0)
        out.append((dict(zip(names, (float(v) for v in means), strict=True)), len(part)))
    return out


def attribution_shift(now: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """Per feature, (now - reference) / total reference reliance; empty without either."""
    total = sum(reference.values())
    if not now or total <= 0:
        return {}
    return {f: (now.get(f, 0.0) - ref) / total for f, ref in reference.items()}


def reliance_share(now: dict[str, float]) -> dict[str, float]:
    """Each feature's part of the total reliance (sums to 1); empty when there is none."""
    total = sum(now.values())
    if total <= 0:
        return {}
    return {f: v / total for f, v in now.items()}

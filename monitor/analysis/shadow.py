"""Shadow re-scoring: tell a bad release from a drifting world on the very same rows.

- Score parity: the live version's own artifact re-scores the logged inputs; a served score
  that differs (beyond float noise) means the predictor transformed the inputs differently
  from training -- training/serving skew.
- Known-good comparison: the last known-good version scores the same rows. World drift
  moves both; a bad release moves only one. Rank correlation between the two versions'
  scores has a floor measured on the shared reference set; the gap between their estimated
  (later realized) ROC AUC is `monitor.core.gap`'s (docs/design.md, "Deciding").
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

PARITY_TOLERANCE = 1e-4
FLOOR_SIGMAS = 3.0


def parity_violation_ratio(
    served: np.ndarray, rescored: np.ndarray, tol: float = PARITY_TOLERANCE
) -> float:
    """Share of rows whose served score differs from the artifact's own re-score by > tol.

    A NaN served score (should not happen; the API refuses it) counts as a violation.
    """
    served = np.asarray(served, dtype=float)
    rescored = np.asarray(rescored, dtype=float)
    if len(served) == 0:
        return 0.0
    diff = np.abs(served - rescored)
    return float(np.mean(~(diff <= tol)))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman correlation; None when undefined (fewer than 3 rows, a constant side)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if len(a) < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return None
    value = spearmanr(a, b).statistic
    return None if not np.isfinite(value) else float(value)


def rank_correlation_floor(
    live_scores: np.ndarray,
    known_good_scores: np.ndarray,
    chunk_size: int,
    sigmas: float = FLOOR_SIGMAS,
) -> float | None:
    """Mean - `sigmas` sd of the per-chunk Spearman correlation over reference chunks.

    Both score arrays are the two versions' scores on the same reference rows, in time
    order, cut into chunks of the live chunk size: the spread two versions' rankings show
    on ordinary data, so a live chunk below it is unusual for *this pair*.
    """
    size = max(3, min(chunk_size, len(live_scores) // 2))
    values = []
    for start in range(0, len(live_scores) - size + 1, size):
        r = rank_correlation(
            live_scores[start : start + size], known_good_scores[start : start + size]
        )
        if r is not None:
            values.append(r)
    if len(values) < 2:
        return None
    arr = np.asarray(values)
    return float(arr.mean() - sigmas * arr.std(ddof=1))

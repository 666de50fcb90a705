"""Shadow re-scoring helpers: parity, rank correlation and its floor."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.analysis.shadow import (
    parity_violation_ratio,
    rank_correlation,
    rank_correlation_floor,
)


def test_parity_counts_rows_beyond_the_tolerance_only():
    served = np.linspace(0, 1, 1000)
    rescored = served.copy()
    rescored[:30] += 1e-3  # real skew
    rescored[30:60] += 5e-5  # float noise, under 1e-4
    assert parity_violation_ratio(served, rescored) == pytest.approx(0.03)
    assert parity_violation_ratio(served, served.astype(np.float32)) == 0.0
    served_nan = served.copy()
    served_nan[0] = np.nan
    assert parity_violation_ratio(served_nan, served) == pytest.approx(0.001)
    assert parity_violation_ratio(np.zeros(0), np.zeros(0)) == 0.0


def test_rank_correlation_and_undefined_cases():
    rng = np.random.default_rng(0)
    a = rng.random(500)
    assert rank_correlation(a, a * 0.5 + 0.1) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert abs(rank_correlation(a, rng.random(500)) or 0) < 0.15
    assert rank_correlation(a[:2], a[:2]) is None
    assert rank_correlation(a, np.ones(500)) is None


def test_floor_is_mean_minus_three_sd_of_chunk_correlations():
    rng = np.random.default_rng(1)
    live = rng.random(4000)
    other = live + rng.normal(0, 0.2, 4000)
    floor = rank_correlation_floor(live, other, 500)
    per_chunk = [
        rank_correlation(live[i : i + 500], other[i : i + 500]) for i in range(0, 4000, 500)
    ]
    values = np.array(per_chunk, dtype=float)
    assert floor == pytest.approx(values.mean() - 3 * values.std(ddof=1))
    assert floor < values.min()
    assert rank_correlation_floor(live[:600], other[:600], 500) is not None  # chunks shrink to fit
    assert rank_correlation_floor(live[:4], other[:4], 500) is None

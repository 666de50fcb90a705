"""The label-delay benchmark's accounting on a tiny timeline: which chunks are judged (their
labels not yet in at their own estimate), which chunk persistence reads, what is scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.delay_methods import DAY, Replay
from bench.delay_timeline import Timeline
from bench.label_delay import scores
from monitor.analysis.estimation import LABEL, PROBA, PerformanceEstimator, roc_auc

# 16 rows, one a day (day 0..15), chunks of 4: they close on days 3, 7, 11, 15.
TIMES = np.arange(16) * DAY
LABELS = np.array([0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1])
PROBAS = np.linspace(0.1, 0.9, 16)


def test_a_chunk_is_labelled_once_its_newest_row_is_plus_the_delay() -> None:
    t = Timeline(TIMES, 4)
    assert t.chunks == 4
    assert [t.close(i) for i in range(4)] == [3 * DAY, 7 * DAY, 11 * DAY, 15 * DAY]
    # Delay 4 days: chunk 0 (closed day 3) is in at day 7 exactly -- arrival at `at` counts.
    assert [t.newest_labelled(4 * DAY, t.close(i)) for i in range(4)] == [None, 0, 1, 2]
    # Delay 5 days: one chunk further behind, and nothing labelled before day 8.
    assert [t.newest_labelled(5 * DAY, t.close(i)) for i in range(4)] == [None, None, 0, 1]
    # At day 9 with a 4-day delay rows of days 0..5 are in: all of chunk 0, half of chunk 1.
    assert t.labelled_rows(4 * DAY, 9 * DAY) == 6
    assert [t.labelled_share(i, 4 * DAY, 9 * DAY) for i in range(3)] == [1.0, 0.5, 0.0]


def test_every_chunk_is_pending_at_its_close_with_any_delay_and_none_without() -> None:
    t = Timeline(TIMES, 4)
    assert all(t.pending(i, DAY // 24) for i in range(t.chunks))
    assert not any(t.pending(i, 0) for i in range(t.chunks))


def test_a_trailing_partial_chunk_never_closes_and_time_must_be_ordered() -> None:
    assert Timeline(np.arange(10) * DAY, 4).chunks == 2
    assert Timeline(np.arange(10) * DAY, 4).newest_labelled(0, 100 * DAY) == 1
    with pytest.raises(ValueError, match="non-decreasing"):
        Timeline(np.array([0, 2, 1]) * DAY, 1)


def _replay(delay_days: int) -> Replay:
    rng = np.random.default_rng(0)
    ref_p = rng.uniform(0.02, 0.98, 400)
    ref_y = (rng.uniform(size=400) < ref_p).astype(int)
    estimator = PerformanceEstimator.fit(pd.DataFrame({PROBA: ref_p, LABEL: ref_y}), 0.5, 100)
    return Replay(
        timeline=Timeline(TIMES, 4),
        delay=delay_days * DAY,
        proba=PROBAS,
        label=LABELS,
        ref_proba=ref_p,
        ref_label=ref_y,
        estimator=estimator,
        reference_auc=0.8,
    )


def test_persistence_reads_the_newest_fully_labelled_chunk_else_the_reference() -> None:
    r = _replay(4)
    truth = [roc_auc(LABELS[s : s + 4], PROBAS[s : s + 4]) for s in (0, 4, 8, 12)]
    assert r.realized.tolist() == pytest.approx(truth)
    assert r.persistence().tolist() == pytest.approx([0.8, truth[0], truth[1], truth[2]])


def test_the_error_is_counted_on_pending_chunks_with_a_realized_value_only() -> None:
    r = _replay(4)
    t = r.timeline
    pending = np.array([t.pending(i, r.delay) for i in range(t.chunks)])
    guess = np.full(4, 0.5)
    out = scores(r, {"half": guess}, pending)
    assert out["chunks"] == 4
    assert out["half"] == pytest.approx(float(np.mean(np.abs(r.realized - 0.5))))
    nothing_pending = np.array([t.pending(i, 0) for i in range(t.chunks)])
    assert scores(r, {"half": guess}, nothing_pending) == {"chunks": 0, "half": None}

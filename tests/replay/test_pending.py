"""The replay's "as issued" record under a long label delay: each chunk's first analysis with
labels still out is what is scored against the realized value once every label is in."""

from __future__ import annotations

from typing import Any

import pytest

from replay.pending import PendingPoller, compare


def _chunk(index: int, labelled: int, est: float, real: float | None = None) -> dict[str, Any]:
    roc = {"value": est, "interval_lower": est - 0.1, "interval_upper": est + 0.1}
    return {
        "version": "v1",
        "chunk_index": index,
        "rows": 500,
        "labelled_rows": labelled,
        "estimated": {"roc_auc": roc},
        "realized": None if real is None else {"roc_auc": real},
    }


def test_the_first_analysis_with_labels_out_is_kept_and_later_ones_ignored() -> None:
    poller = PendingPoller("http://unused")
    poller.observe([_chunk(0, 0, 0.70)])
    poller.observe([_chunk(0, 250, 0.75), _chunk(1, 500, 0.60)])  # chunk 1: all in at once
    assert set(poller.issued) == {("v1", 0)}
    assert poller.issued[("v1", 0)]["estimated"]["roc_auc"]["value"] == 0.70


def test_compare_scores_the_issued_estimate_and_interval_against_the_final_realized() -> None:
    issued = {("v1", 0): _chunk(0, 50, 0.70), ("v1", 1): _chunk(1, 0, 0.80)}
    final = [_chunk(0, 500, 0.71, real=0.75), _chunk(1, 500, 0.80, real=0.95), _chunk(2, 500, 0.8)]
    out = compare(issued, final, {"v1": 0.78})
    s = out["summary"]["v1"]
    assert s["chunks"] == 2  # chunk 2 was never seen with labels out and has no realized value
    assert s["estimate_mae"] == pytest.approx((0.05 + 0.15) / 2)
    assert s["reference_mae"] == pytest.approx((0.03 + 0.17) / 2)
    assert s["interval_coverage"] == 0.5  # 0.75 in [0.6, 0.8]; 0.95 outside [0.7, 0.9]
    assert s["mean_labelled_share_when_issued"] == pytest.approx(0.05)
    assert out["chunks"][0]["estimated_final"] == 0.71

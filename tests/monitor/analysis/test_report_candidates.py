"""The report's "Candidates" section from a real store holding candidate chunks: a figure
per candidate (estimated and, where labelled, realized ROC AUC of candidate and baseline on
the same rows) and its verdict line; no section without candidates."""

from __future__ import annotations

import base64
from pathlib import Path

from monitor.analysis.report import render_report, verdict_line
from monitor.memory.candidates import CandidateChunk, CandidateState
from monitor.store import Store
from monitor.store.sqlite import SqliteStore
from tests.support.report_page import figures, traces

MODEL = "m"


def register(store: Store, version: str) -> None:
    store.register(
        {
            "model": MODEL,
            "version": version,
            "schema": {"features": [{"name": "x"}]},
            "reference": [],
            "artifact": base64.b64encode(version.encode()).decode(),
        }
    )


def chunk(i: int, labelled: int, baseline: str = "v1") -> CandidateChunk:
    return CandidateChunk(
        chunk_index=i,
        baseline_version=baseline,
        rows=500,
        first_seq=500 * i + 1,
        last_seq=500 * (i + 1),
        candidate_estimate=0.801 + i / 1000,
        candidate_sampling_error=0.01,
        baseline_estimate=0.861,
        baseline_sampling_error=0.01,
        rank_correlation=0.9,
        labelled_rows=labelled,
        candidate_realized=0.7771 if labelled else None,
        baseline_realized=0.8333 if labelled else None,
        start_time=f"2013-07-0{i + 1}T00:00:00",
        analysed_at=f"2024-01-0{i + 1}T00:00:00+00:00",
    )


def test_candidates_section_with_figure_and_verdict(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "m.db") as store:
        for version in ("v1", "v2", "v3<x>"):
            register(store, version)
        state = CandidateState(store)
        state.add(MODEL, "v2", "api", at="2024-01-01T00:00:00+00:00", by="operator")
        state.add(MODEL, "v3<x>", "api", at="2024-01-01T00:00:00+00:00", by="operator")
        state.save_chunks(MODEL, "v2", [chunk(0, 0, "v0"), chunk(1, 0), chunk(2, 400)])
        state.set_verdicts(
            MODEL,
            {
                "v2": {
                    "version": "v2",
                    "verdict": "Worse",
                    "reason": "WorseOnSameRows",
                    "message": "worse than the baseline by more than 0.03",
                    "baseline_version": "v1",
                    "basis": "estimated",
                    "chunks": 2,
                    "rows": 1000,
                    "labelled_rows": 400,
                    "chunks_needed": None,
                    "estimated_gap": -0.0595,
                    "estimated_gap_lower": -0.0650,
                    "estimated_gap_upper": -0.0540,
                    "realized_gap": None,
                    "realized_gap_lower": None,
                    "realized_gap_upper": None,
                    "level": 0.9,
                }
            },
        )
        page = render_report(store, MODEL, cache=object())
    assert "<h2>Candidates</h2>" in page and "<h3>Candidate v2</h3>" in page
    assert "<h3>Candidate v3&lt;x&gt;</h3>" in page and "v3<x>" not in page  # escaped
    assert (
        "Verdict: Worse (WorseOnSameRows): estimated gap -0.0595 [-0.0650, -0.0540] at 90% "
        "vs v1 over 2 chunks / 1000 rows. worse than the baseline" in page
    )
    assert "Verdict: none yet" in page and "No baseline chunk scored yet" in page  # v3
    assert len(figures(page)) == 1
    # Of the verdict's baseline (v1) only; the chunk scored on v0 is said to be left out.
    assert "1 chunks scored on earlier baselines are not shown" in page
    ys = traces(page, "Candidate v2: ROC AUC per baseline chunk, same rows")
    assert ys["candidate v2, estimated"] == [0.802, 0.803]
    assert ys["baseline, estimated"] == [0.861, 0.861]
    assert ys["candidate, realized"] == [None, 0.7771]  # where labelled
    assert ys["baseline, realized"] == [None, 0.8333]


def test_no_candidates_no_section(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "m.db") as store:
        register(store, "v1")
        page = render_report(store, MODEL, cache=object())
    assert "Candidates" not in page and "Candidate " not in page


def test_verdict_line_uses_the_realized_gap_once_labels_decide() -> None:
    line = verdict_line(
        {
            "verdict": "Inconclusive",
            "reason": "BandOverlaps",
            "basis": "realized",
            "realized_gap": 0.01,
            "realized_gap_lower": -0.02,
            "realized_gap_upper": 0.04,
            "level": 0.9,
            "baseline_version": "v1",
            "chunks": 3,
            "rows": 1500,
            "chunks_needed": 2,
            "message": "m",
        }
    )
    assert line == (
        "Verdict: Inconclusive (BandOverlaps): realized gap +0.0100 [-0.0200, +0.0400] at 90% "
        "vs v1 over 3 chunks / 1500 rows; about 2 more chunks would decide. m"
    )

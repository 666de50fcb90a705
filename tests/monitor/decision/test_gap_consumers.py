"""One same-rows gap for every consumer: the rollback rule, the candidate verdict, the
exported gauge (what the progressive-delivery templates gate on) and the report read the
same number from the same chunks, every filter applied by each (`monitor.core.gap`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.analysis.cycle import published_gaps
from monitor.analysis.report import version_gaps
from monitor.core.evidence import ChunkEvidence, Estimate
from monitor.core.gap import GapField, GapFilter
from monitor.decision.candidates import judge
from monitor.decision.policy import CandidatePolicy, parse_policy, resolve
from monitor.decision.rules import cumulative_gap_rule, gap_filter
from monitor.loops.background import chunk_plans
from monitor.memory.candidates import CandidateChunk
from monitor.memory.state import ChunkingStatus, OperatorState
from monitor.metrics.registry import MonitorMetrics
from monitor.store.sqlite import SqliteStore

MODEL, LIVE, GOOD, OLDER = "rain", "v2", "v1", "v0"
STATUS = ChunkingStatus("rows", 500, None, 500, 0.025, 4000)
SPEC: dict[str, Any] = {"model": MODEL, "targetRef": {"name": "predictor"}}
# A spec that sets the filter's values itself: every chunk of the right baseline counts.
OWN = {
    **SPEC,
    "minRowsPerChunk": 100,
    "rollbackRules": {
        "estimatedGap": {"sameLearnerOnly": False},
        "realizedGap": {"minLabelledRows": 100},
    },
}

# (baseline, rows, labelled rows, estimated gap, realized gap): chunk 0 was compared with
# an older known-good (left out); chunks 2 and 3 hold too few labels (the policy's 200 at
# 500-row chunks) and too few rows (its 300) on their own, so they are pooled with the
# next chunk; chunk 5 is a pool still short of the minimum (every consumer waits).
FIGURES = [
    (OLDER, 500, 500, +0.40, +0.40),
    (GOOD, 500, 500, -0.04, -0.06),
    (GOOD, 500, 150, -0.02, -0.30),
    (GOOD, 200, 200, -0.50, -0.50),
    (GOOD, 500, 400, -0.01, -0.02),
    (GOOD, 100, 50, -0.90, -0.90),
]
# Pooling never moves the weighted mean: every chunk of a complete pool counts by its rows
# (estimated) or labelled rows (realized).
ESTIMATED = (500 * -0.04 + 500 * -0.02 + 200 * -0.50 + 500 * -0.01) / 1700
REALIZED = (500 * -0.06 + 150 * -0.30 + 200 * -0.50 + 400 * -0.02) / 1250


def evidence(same_learner: bool) -> list[ChunkEvidence]:
    out = []
    for i, (baseline, rows, labelled, est, real) in enumerate(FIGURES):
        out.append(
            ChunkEvidence(
                model=MODEL,
                version=LIVE,
                chunk_index=i,
                rows=rows,
                first_seq=i * 500 + 1,
                last_seq=i * 500 + rows,
                start_time="",
                end_time="",
                estimated={"roc_auc": Estimate(0.80 + est)},
                realized={"roc_auc": 0.80 + real},
                labelled_rows=labelled,
                known_good_version=baseline,
                same_learner=same_learner,
                known_good_estimated={"roc_auc": Estimate(0.80)},
                known_good_realized={"roc_auc": 0.80},
            )
        )
    return out


def candidate_chunks() -> list[CandidateChunk]:
    """The same figures as a candidate scored on its baseline's rows."""
    return [
        CandidateChunk(
            chunk_index=i,
            baseline_version=baseline,
            rows=rows,
            first_seq=i * 500 + 1,
            last_seq=i * 500 + rows,
            candidate_estimate=0.80 + est,
            candidate_sampling_error=0.02,
            baseline_estimate=0.80,
            baseline_sampling_error=0.02,
            rank_correlation=0.9,
            labelled_rows=labelled,
            candidate_realized=0.80 + real,
            baseline_realized=0.80,
            analysed_at=f"2026-01-01T00:00:{i:02d}Z",
        )
        for i, (baseline, rows, labelled, est, real) in enumerate(FIGURES)
    ]


def consumers(
    tmp_path: Path, same_learner: bool, field: GapField, spec: dict[str, Any] = SPEC
) -> dict[str, float | None]:
    """Each consumer's gap, given the policy as each one knows it: the decision and the
    candidate verdict the resolved policy, the analysis the ModelMonitor's chunk plan."""
    policy, _ = resolve(parse_policy(spec), STATUS)
    plan = chunk_plans([{"spec": spec}])[MODEL]
    chunks = evidence(same_learner)
    rule = cumulative_gap_rule(policy, chunks, GOOD, field)
    verdict = judge(
        LIVE,
        candidate_chunks(),
        CandidatePolicy(),
        same_learner,
        gaps=gap_filter(policy, None),
    )
    metrics = MonitorMetrics()
    estimated, realized = published_gaps(chunks, STATUS, 0.9, plan.gaps)
    metrics.publish_cumulative(MODEL, LIVE, estimated, realized.gap)
    gauge = f"modelguard_{field}_gap_cumulative"
    store = SqliteStore(tmp_path / f"{same_learner}-{field}.db")
    OperatorState(store).set_chunking(MODEL, LIVE, STATUS)
    report = version_gaps(store, MODEL, LIVE, chunks)
    return {
        "rollback rule": rule[-1][1] if rule else None,
        "candidate verdict": (verdict.estimated if field == "estimated" else verdict.realized).gap,
        "exported gauge": metrics.registry.get_sample_value(
            gauge, {"model": MODEL, "version": LIVE}
        ),
        "report": report[0] if field == "estimated" else report[1],
    }


@pytest.mark.parametrize("field", ["estimated", "realized"])
def test_every_consumer_reads_the_same_gap_with_every_filter(
    tmp_path: Path, field: GapField
) -> None:
    found = consumers(tmp_path, True, field)
    expected = ESTIMATED if field == "estimated" else REALIZED
    assert found == {k: pytest.approx(expected) for k in found}


def test_across_learners_no_consumer_reads_an_estimated_gap_and_all_read_the_labels(
    tmp_path: Path,
) -> None:
    assert set(consumers(tmp_path, False, "estimated").values()) == {None}
    realized = consumers(tmp_path, False, "realized")
    assert realized == {k: pytest.approx(REALIZED) for k in realized}


def test_a_spec_with_its_own_filter_values_is_exported_with_them(tmp_path: Path) -> None:
    """Only the older baseline's chunk 0 is left out: with minimums of 100 rows and 100
    labelled rows chunks 1-5 count on their own by rows (estimated, across learners too),
    and chunks 1-4 by labelled rows (realized; chunk 5's 50 labels wait). The report reads no
    ModelMonitor: it counts as a spec that sets none of these values does (docs/design.md)."""
    est = consumers(tmp_path, False, "estimated", OWN)
    assert est.pop("report") is None  # the default: same learner only
    expected = (ESTIMATED * 1700 + 100 * -0.90) / 1800
    assert est == {k: pytest.approx(expected) for k in est}
    real = consumers(tmp_path, True, "realized", OWN)
    assert real == {k: pytest.approx(REALIZED) for k in real}


def test_the_default_filter_is_the_measured_one_scaled_to_the_chunk() -> None:
    policy, _ = resolve(parse_policy(SPEC), STATUS)
    assert gap_filter(policy, GOOD) == GapFilter.scaled(GOOD, 500) == GapFilter(GOOD, 300, 200)

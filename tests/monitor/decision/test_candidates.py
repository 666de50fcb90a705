"""Candidates: the gap band, the verdict rules, the declared set, scoring on real rows, and
the decision that rejects a `Worse` candidate the moment it serves."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from monitor.analysis.candidates import score_chunk
from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.core.gap import GapSummary, summarize
from monitor.decision.candidates import judge
from monitor.decision.decide import decide
from monitor.decision.policy import CandidatePolicy, PolicyError, parse_policy
from monitor.memory.candidates import CandidateChunk, CandidateState
from monitor.store.sqlite import SqliteStore
from tests.monitor.analysis.test_analysis import CHUNK, replay_rows
from tests.monitor.decision.test_decision import BAD, inp, policy

POLICY = CandidatePolicy()


def scored(
    gaps: list[float],
    rows: int = 500,
    baseline: str = "good-1",
    realized: list[float] | None = None,
    **kw: Any,
) -> list[CandidateChunk]:
    """Chunks with these estimated (and realized) candidate - baseline gaps."""
    out = []
    for i, gap in enumerate(gaps):
        real = realized[i] if realized else None
        out.append(
            CandidateChunk(
                chunk_index=i,
                baseline_version=baseline,
                rows=rows,
                first_seq=i * rows + 1,
                last_seq=(i + 1) * rows,
                candidate_estimate=0.8 + gap,
                candidate_sampling_error=0.02,
                baseline_estimate=0.8,
                baseline_sampling_error=0.02,
                rank_correlation=0.9,
                labelled_rows=rows if realized else 0,
                candidate_realized=None if real is None else 0.8 + real,
                baseline_realized=None if real is None else 0.8,
                analysed_at=f"2026-01-01T00:00:{i:02d}+00:00",
                **kw,
            )
        )
    return out


# -- the band ------------------------------------------------------------------------------


def width(s: GapSummary) -> float:
    assert s.lower is not None and s.upper is not None
    return s.upper - s.lower


def test_band_is_a_t_interval_over_the_chunks() -> None:
    s = summarize([(-0.10, 500), (-0.08, 500), (-0.12, 500)], level=0.9)
    assert s.gap == pytest.approx(-0.10)
    assert s.rows == 1500 and s.chunks == 3
    assert s.spread == pytest.approx(0.02)
    # t(0.95, 2 df) = 2.92: half-width 2.92 * 0.02 / sqrt(3)
    assert width(s) / 2 == pytest.approx(2.92 * 0.02 / math.sqrt(3), rel=1e-2)


def test_band_narrows_as_chunks_accumulate_and_is_unknown_for_one() -> None:
    assert summarize([(-0.1, 500)]).lower is None
    few = summarize([(-0.1, 500), (-0.05, 500), (-0.15, 500)])
    many = summarize([(g, 500) for g in [-0.1, -0.05, -0.15] * 4])
    assert width(many) < width(few) / 2


def test_unknown_gaps_and_empty_chunks_are_left_out() -> None:
    s = summarize([(None, 500), (float("nan"), 500), (-0.02, 0), (-0.04, 250)])
    assert s.gap == pytest.approx(-0.04) and s.chunks == 1 and s.rows == 250


def test_a_few_big_chunks_do_not_pass_for_many() -> None:
    even = summarize([(-0.1, 500), (-0.05, 500), (-0.15, 500)])
    skewed = summarize([(-0.1, 5000), (-0.05, 50), (-0.15, 50)])
    assert width(skewed) > width(even)


# -- the verdict ---------------------------------------------------------------------------


def test_clearly_lower_on_the_same_rows_is_worse() -> None:
    v = judge("bad-2", scored([-0.10, -0.12, -0.09]), POLICY)
    assert (v.verdict, v.reason, v.basis) == ("Worse", "WorseOnSameRows", "estimated")
    assert v.baseline_version == "good-1" and v.rows == 1500 and v.chunks == 3
    assert "-0.1033" in v.evidence() and "good-1" in v.evidence()


def test_near_zero_with_a_tight_band_is_equivalent() -> None:
    v = judge("retrain", scored([0.002, -0.003, 0.001, -0.001]), POLICY)
    assert v.verdict == "Equivalent"


def test_clearly_higher_is_better() -> None:
    assert judge("lr", scored([0.06, 0.05, 0.07]), POLICY).verdict == "Better"


def test_too_few_chunks_or_rows_is_inconclusive_and_says_how_many_more() -> None:
    two = judge("bad-2", scored([-0.1, -0.1]), POLICY)
    assert (two.verdict, two.reason, two.chunks_needed) == ("Inconclusive", "TooFewRows", 1)
    small = judge("bad-2", scored([-0.1] * 3, rows=100), POLICY)
    assert small.reason == "TooFewRows" and small.chunks_needed == 7  # 1000 rows at 100 each


def test_a_band_across_the_margin_is_inconclusive_with_an_estimate_of_chunks_needed() -> None:
    v = judge("maybe", scored([-0.08, 0.02, -0.06]), POLICY)
    assert (v.verdict, v.reason) == ("Inconclusive", "BandOverlaps")
    assert v.chunks_needed is not None and v.chunks_needed >= 1
    assert v.estimated.lower is not None and v.estimated.upper is not None
    assert v.estimated.lower < 0 < v.estimated.upper


def test_a_gap_sitting_at_the_margin_claims_no_chunk_count() -> None:
    v = judge("edge", scored([-0.05, -0.01, -0.012, -0.024]), POLICY)
    assert (v.verdict, v.reason) == ("Inconclusive", "BandOverlaps")
    assert v.chunks_needed is None


def test_realized_gaps_outrank_estimated_ones() -> None:
    chunks = scored([-0.10, -0.12, -0.09], realized=[0.001, -0.002, 0.0])
    v = judge("bad-estimate", chunks, POLICY)
    assert (v.verdict, v.basis) == ("Equivalent", "realized")


def test_a_different_learner_waits_for_labels() -> None:
    v = judge("lr", scored([-0.10, -0.12, -0.09]), POLICY, same_learner=False)
    assert (v.verdict, v.reason) == ("Inconclusive", "DifferentLearner")
    labelled = scored([-0.10, -0.12, -0.09], realized=[-0.08, -0.07, -0.09])
    assert judge("lr", labelled, POLICY, same_learner=False).verdict == "Worse"


def test_missing_features_and_unseen_categories_are_incompatible() -> None:
    missing = scored([0.0] * 3, missing_features=("humid",))
    v = judge("needs-humid", missing, POLICY)
    assert (v.verdict, v.reason) == ("Incompatible", "MissingFeatures") and "humid" in v.message
    unseen = scored([0.0] * 3, unseen_categories={"origin": ["XYZ"]})
    v = judge("other-airport", unseen, POLICY)
    assert (v.verdict, v.reason) == ("Incompatible", "UnseenCategories") and "XYZ" in v.message
    seen_once = [*unseen[:2], replace(unseen[2], unseen_categories={})]
    assert judge("other-airport", seen_once, POLICY).verdict != "Incompatible"


def test_only_the_latest_baselines_chunks_count() -> None:
    old = scored([-0.2, -0.2, -0.2], baseline="older-0")
    new = [
        replace(c, analysed_at=f"2026-02-01T00:00:{c.chunk_index:02d}+00:00")
        for c in scored([0.001, -0.001, 0.0, 0.001])
    ]
    v = judge("x", old + new, POLICY)
    assert v.baseline_version == "good-1" and v.verdict == "Equivalent" and v.chunks == 4


def test_no_evidence_and_unregistered_are_inconclusive() -> None:
    assert judge("x", [], POLICY).reason == "NoEvidence"
    assert judge("x", scored([-0.1] * 3), POLICY, registered=False).reason == "NotRegistered"


def test_spec_candidates_and_policy_parse_and_refuse_bad_fields() -> None:
    p = policy(candidates=["v2-abc", "v3-def"], candidatePolicy={"margin": "0.02", "minChunks": 4})
    assert p.candidates == ("v2-abc", "v3-def")
    assert p.candidate_policy.margin == 0.02 and p.candidate_policy.min_chunks == 4
    assert p.candidate_policy.reject_worse is True
    for spec, field in (
        ({"candidates": ["Bad Name"]}, "spec.candidates[0]"),
        ({"candidates": [f"v{i}" for i in range(9)]}, "spec.candidates"),
        ({"candidates": ["v1", "v1"]}, "spec.candidates"),
        ({"candidatePolicy": {"margin": 0.03}}, "spec.candidatePolicy.margin"),
        ({"candidatePolicy": {"minChunks": 1}}, "spec.candidatePolicy.minChunks"),
    ):
        with pytest.raises(PolicyError) as err:
            parse_policy({"model": "m", "targetRef": {"name": "d"}, **spec})
        assert err.value.path == field


# -- the decision --------------------------------------------------------------------------


def test_a_worse_candidate_is_rejected_the_moment_it_serves() -> None:
    verdict = judge(BAD, scored([-0.10, -0.12, -0.09]), POLICY)
    decision = decide(inp([], candidate=verdict))
    assert decision.action == "reject-and-rollback" and decision.trigger == "candidate"
    assert decision.target_version == "good-1" and "as a candidate" in decision.message
    assert decision.reject_reason and "CandidateWorse" in decision.reject_reason


def test_the_switch_and_a_cleared_rejection_leave_it_to_the_live_rules() -> None:
    verdict = judge(BAD, scored([-0.10, -0.12, -0.09]), POLICY)
    off = policy(candidatePolicy={"rejectWorse": False})
    assert decide(inp([], candidate=verdict, policy=off)).trigger is None
    assert decide(inp([], candidate=verdict, gate_waived=True)).trigger is None
    equivalent = judge(BAD, scored([0.001, -0.001, 0.0]), POLICY)
    assert decide(inp([], candidate=equivalent)).trigger is None


# -- the declared set ----------------------------------------------------------------------


def test_declarations_by_api_and_spec_are_tracked_separately(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m.db")
    state = CandidateState(store)
    assert state.add("rain", "v2", "api", "2026-01-01T00:00:00Z", "operator")
    assert not state.add("rain", "v2", "api", "2026-01-02T00:00:00Z")
    assert state.sync_spec("rain", ["v2", "v3"], 2, "2026-01-03T00:00:00Z")
    assert not state.sync_spec("rain", ["v2", "v3"], 2, "2026-01-04T00:00:00Z")
    entries = state.entries("rain")
    assert entries["v2"].sources == ("api", "spec") and entries["v3"].sources == ("spec",)
    assert entries["v2"].added_at == "2026-01-01T00:00:00Z"
    assert state.backfill_chunks("rain") == 2
    assert state.remove("rain", "v2", "api") == (True, ("spec",))
    assert state.sync_spec("rain", [], 2, "2026-01-05T00:00:00Z")
    assert state.entries("rain") == {}
    with pytest.raises(ValueError):
        state.add("rain", "v4", "someone", "2026-01-01T00:00:00Z")


def test_chunks_upsert_by_baseline_and_index(tmp_path: Path) -> None:
    state = CandidateState(SqliteStore(tmp_path / "m.db"))
    first = scored([-0.1, -0.1])
    state.save_chunks("rain", "v2", first)
    state.save_chunks("rain", "v2", [replace(first[1], labelled_rows=7)])
    state.save_chunks("rain", "v2", scored([0.0], baseline="other"))
    back = state.chunks("rain", "v2")
    assert [(c.baseline_version, c.chunk_index) for c in back] == [
        ("good-1", 0),
        ("good-1", 1),
        ("other", 0),
    ]
    assert back[1].labelled_rows == 7 and back[0] == first[0]


# -- scoring on real rows ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(registrations: dict[str, Any]) -> dict[str, FittedVersion]:
    return {name: FittedVersion.fit(reg, CHUNK) for name, reg in registrations.items()}


def test_a_candidate_is_scored_on_the_baselines_very_rows(fitted, split) -> None:
    rows = replay_rows(split, fitted["good"]).iloc[:CHUNK].reset_index(drop=True)
    evidence = analyse_chunks(fitted["good"], rows, 0, None, chunk_size=CHUNK)[0]
    got = score_chunk(fitted["retrain"], rows, evidence, "good")
    own = fitted["retrain"].score(rows)
    labelled = rows["label"].notna().to_numpy()
    y = rows["label"].to_numpy(dtype=float, na_value=np.nan)[labelled]
    assert got.rows == CHUNK and got.labelled_rows == int(labelled.sum())
    assert got.candidate_realized == pytest.approx(roc_auc_score(y, own[labelled]))
    assert got.baseline_realized == pytest.approx(
        roc_auc_score(y, rows["probability"].to_numpy()[labelled])
    )
    assert got.baseline_estimate == evidence.estimated["roc_auc"].value
    assert got.candidate_estimate is not None and 0.5 < got.candidate_estimate <= 1
    assert got.rank_correlation is not None and got.rank_correlation > 0.8
    assert got.missing_features == ()


def test_logged_inputs_without_a_feature_the_candidate_needs(fitted, split) -> None:
    rows = replay_rows(split, fitted["good"]).iloc[:CHUNK].reset_index(drop=True)
    evidence = analyse_chunks(fitted["good"], rows, 0, None, chunk_size=CHUNK)[0]
    logged = rows.drop(columns=["humid"])  # as a baseline without `humid` would log them
    got = score_chunk(fitted["retrain"], logged, evidence, "no-key-features")
    assert got.missing_features == ("humid",) and got.candidate_estimate is None
    assert judge("retrain", [got] * 3, POLICY).verdict == "Incompatible"

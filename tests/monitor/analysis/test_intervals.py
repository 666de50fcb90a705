"""The interval method on synthetic data with a known answer, with NannyML's real CBPE.

A score that is calibrated and i.i.d. on the reference and live: the intervals cover about
their stated level. A live relation score -> label that changes from chunk to chunk (what
weather episodes do): NannyML's band and, at first, the intervals miss, and the track
record says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.analysis.estimation import LABEL, PROBA, PerformanceEstimator, realized_metrics
from monitor.analysis.intervals import IntervalCalibrator, residual_of
from monitor.analysis.track_record import track_record
from monitor.core.evidence import ChunkEvidence, Estimate, TrackRecord
from monitor.metrics.detail import Detail
from monitor.metrics.registry import MonitorMetrics

SIZE, THRESHOLD = 500, 0.5


def scores(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.beta(1.2, 2.5, n)


@pytest.fixture(scope="module")
def estimator() -> tuple[PerformanceEstimator, pd.DataFrame]:
    rng = np.random.default_rng(1)
    p = scores(rng, 4000)
    ref = pd.DataFrame({PROBA: p, LABEL: (rng.random(len(p)) < p).astype(int)})
    return PerformanceEstimator.fit(ref, THRESHOLD, SIZE), ref


def run(
    estimator: PerformanceEstimator, ref: pd.DataFrame, chunks: int, relation: object
) -> tuple[IntervalCalibrator, list[ChunkEvidence]]:
    """Chunk by chunk: interval from earlier chunks, then the chunk's labels join."""
    calibrator = IntervalCalibrator.fit(estimator, ref, SIZE, 0.9)
    rng = np.random.default_rng(2)
    out = []
    for k in range(chunks):
        p = scores(rng, SIZE)
        truth = relation(k, p)  # type: ignore[operator]
        y = (rng.random(SIZE) < truth).astype(int)
        est = calibrator.apply(k, estimator.estimate(p, np.zeros(SIZE, dtype=int))[0])
        realized = realized_metrics(pd.DataFrame({PROBA: p, LABEL: y}), THRESHOLD)
        for metric, e in est.items():
            residual = residual_of(e, realized[metric])
            if residual is not None:
                calibrator.observe(k, metric, residual)
        out.append(evidence(k, est, realized))
    return calibrator, out


def evidence(k: int, est: dict[str, Estimate], realized: dict[str, float | None]) -> ChunkEvidence:
    return ChunkEvidence(
        model="m",
        version="v",
        chunk_index=k,
        rows=SIZE,
        first_seq=k * SIZE + 1,
        last_seq=(k + 1) * SIZE,
        start_time="",
        end_time="",
        estimated=est,
        realized=realized,
        labelled_rows=SIZE,
    )


def interval(e: Estimate) -> tuple[float, float]:
    assert e.interval_lower is not None and e.interval_upper is not None
    return e.interval_lower, e.interval_upper


def width(e: Estimate, band: bool = False) -> float:
    if band:
        assert e.lower is not None and e.upper is not None
        return e.upper - e.lower
    lo, hi = interval(e)
    return hi - lo


def coverage(chunks: list[ChunkEvidence]) -> float:
    inside = []
    for c in chunks:
        lo, hi = interval(c.estimated["roc_auc"])
        truth = c.realized["roc_auc"]
        assert truth is not None
        inside.append(lo <= truth <= hi)
    return float(np.mean(inside))


def test_calibrated_iid_scores_are_covered_near_the_level(estimator) -> None:
    est, ref = estimator
    calibrator, chunks = run(est, ref, 60, lambda _k, p: p)
    assert 0.8 <= coverage(chunks) <= 0.99
    record = track_record(chunks)["roc_auc"]
    assert record.chunks == 24 and record.level == 0.9
    assert abs(record.bias) < 0.02 and record.mae < 0.04
    assert record.interval_coverage is not None and record.interval_coverage >= 0.75
    # The calibrator's own summary is the same as the one rebuilt from stored chunks.
    assert calibrator.track_record("roc_auc") == record
    # On i.i.d. data the interval is about NannyML's band: no shift to account for.
    e = chunks[-1].estimated["roc_auc"]
    assert width(e) < 1.5 * width(e, band=True)


def episodes(k: int, p: np.ndarray) -> np.ndarray:
    """A different score -> label relation every chunk: sharp, flat, inverted."""
    sharpness = [4.0, 0.25, -0.5, 3.0, 0.1, 2.5][k % 6]
    logit = np.log(p / (1 - p))
    return 1 / (1 + np.exp(-sharpness * logit))


def test_miscalibrated_scores_break_the_band_and_the_track_record_says_so(estimator) -> None:
    est, ref = estimator
    _, chunks = run(est, ref, 24, episodes)
    first = track_record(chunks[:12])["roc_auc"]
    assert first.interval_coverage is not None and first.interval_coverage < 0.75
    assert first.band_coverage is not None and first.band_coverage < 0.5
    assert first.mae > 0.1
    # The calibration learns the larger errors: later intervals are much wider.
    early = chunks[1].estimated["roc_auc"]
    late = chunks[-1].estimated["roc_auc"]
    assert width(late) > 2 * width(early)


def test_a_chunk_never_calibrates_its_own_interval(estimator) -> None:
    est, ref = estimator
    calibrator = IntervalCalibrator.fit(est, ref, SIZE, 0.9)
    before = calibrator.half_width(5, "roc_auc", 0.03)
    calibrator.observe(5, "roc_auc", residual_of(Estimate(0.8, sampling_error=0.03), 0.2))  # type: ignore[arg-type]
    assert calibrator.half_width(5, "roc_auc", 0.03) == before
    assert calibrator.half_width(6, "roc_auc", 0.03) > before  # type: ignore[operator]


def test_track_record_and_intervals_are_on_a_fresh_registry() -> None:
    m = MonitorMetrics()
    m.detail["m"] = Detail(per_feature=True)  # the band's coverage too
    e = Estimate(0.8, 0.75, 0.85, 0.02, interval_lower=0.7, interval_upper=0.9, interval_level=0.9)
    ev = ChunkEvidence(
        model="m",
        version="v",
        chunk_index=0,
        rows=500,
        first_seq=1,
        last_seq=500,
        start_time="",
        end_time="",
        estimated={"roc_auc": e},
        nowcast={"roc_auc": Estimate(0.78, interval_lower=0.77, interval_upper=0.79)},
        track_record={"roc_auc": TrackRecord("roc_auc", 20, 0.05, -0.01, 0.9, 0.85, 20, 0.5)},
    )
    m.publish_chunk(ev)
    text = m.exposition().decode()
    labels = 'metric="roc_auc",model="m",version="v"'
    for name, value in [
        ("modelguard_estimated_performance_interval_lower", 0.7),
        ("modelguard_estimated_performance_interval_upper", 0.9),
        ("modelguard_nowcast_performance", 0.78),
        ("modelguard_nowcast_performance_lower", 0.77),
        ("modelguard_estimate_abs_error", 0.05),
        ("modelguard_estimate_bias", -0.01),
        ("modelguard_estimate_interval_coverage_ratio", 0.85),
        ("modelguard_estimate_band_coverage_ratio", 0.5),
        ("modelguard_estimate_track_record_chunks", 20.0),
    ]:
        assert f"{name}{{{labels}}} {value}" in text, name
    assert 'modelguard_estimate_interval_level{model="m",version="v"} 0.9' in text
    assert m.forget_version("m", "v") > 0
    assert "modelguard_estimate_abs_error{" not in m.exposition().decode()


def test_the_nowcast_is_the_estimate_without_labels_and_realized_with_all(
    registrations, split
) -> None:
    from monitor.analysis.chunks import FittedVersion, analyse_chunk
    from tests.monitor.analysis.test_analysis import replay_rows

    live = FittedVersion.fit(registrations["good"], SIZE, 0.9)
    rows = replay_rows(split, live).iloc[:SIZE].reset_index(drop=True)
    labelled = analyse_chunk(live, rows, 0)
    blind = analyse_chunk(live, rows.assign(label=pd.array([pd.NA] * len(rows), "Int64")), 0)
    # Equal up to ties: NannyML's estimator orders tied scores, realized averages their ranks.
    assert labelled.nowcast["roc_auc"].value == pytest.approx(
        labelled.realized["roc_auc"], abs=1e-3
    )
    assert labelled.nowcast["roc_auc"].interval_upper == pytest.approx(
        labelled.nowcast["roc_auc"].value
    )
    assert blind.nowcast["roc_auc"].value == pytest.approx(blind.estimated["roc_auc"].value)
    e = blind.estimated["roc_auc"]
    lo, hi = interval(e)
    assert e.interval_level == 0.9 and e.value is not None and lo < e.value < hi
    # Wider than NannyML's band: the reference's own windows already show a shift.
    assert width(e) > width(e, band=True)

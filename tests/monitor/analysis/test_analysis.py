"""analyse_chunk on the real 2013 replay with real trained models (no mocks)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from bentos.training.data import LABEL_COLUMN, TIME_COLUMN, Split
from monitor.analysis.chunks import FittedVersion, analyse_chunk, analyse_chunks

CHUNK = 500


def replay_rows(split: Split, served_by: FittedVersion) -> pd.DataFrame:
    """Replay rows the predictor accepts, shaped like Store.records_frame, served by a version."""
    schema = served_by.registration.schema
    rows = split.replay[schema.valid_rows(split.replay)].reset_index(drop=True)
    frame = rows[schema.feature_names].copy()
    frame.insert(0, "seq", np.arange(1, len(rows) + 1))
    frame.insert(1, "prediction_id", [f"p{i}" for i in range(len(rows))])
    frame.insert(2, "timestamp", rows[TIME_COLUMN].to_numpy())
    frame["probability"] = served_by.score(frame).astype(float)
    frame["predicted_class"] = (frame["probability"] >= schema.threshold).astype(int)
    frame["label"] = rows[LABEL_COLUMN].astype("Int64").to_numpy()
    return frame


@pytest.fixture(scope="module")
def fitted(registrations: dict[str, Any]) -> dict[str, FittedVersion]:
    return {name: FittedVersion.fit(reg, CHUNK) for name, reg in registrations.items()}


@pytest.fixture(scope="module")
def replay(split: Split, fitted: dict[str, FittedVersion]) -> pd.DataFrame:
    return replay_rows(split, fitted["good"])


def chunk(frame: pd.DataFrame, index: int) -> pd.DataFrame:
    return frame.iloc[index * CHUNK : (index + 1) * CHUNK].reset_index(drop=True)


def test_every_field_is_filled_on_a_labelled_chunk(fitted, replay):
    rows = chunk(replay, 4)
    ev = analyse_chunk(fitted["good"], rows, 4, fitted["retrain"])
    assert (ev.chunk_index, ev.rows, ev.labelled_rows) == (4, CHUNK, CHUNK)
    assert ev.first_seq == 4 * CHUNK + 1 and ev.last_seq == 5 * CHUNK
    assert ev.start_time.startswith("2013-07") and ev.end_time > ev.start_time
    for metric in ("roc_auc", "f1", "precision", "recall"):
        est = ev.estimated[metric]
        assert est.value is not None and est.lower is not None and est.upper is not None
        assert est.lower <= est.value <= est.upper
        assert est.sampling_error and est.sampling_error > 0
        assert ev.realized[metric] is not None
    roc = ev.estimated["roc_auc"]
    # Our documented threshold: reference realized ROC AUC - 0.15 (NannyML's +-3 sd never fires).
    ref_auc = fitted["good"].estimator.reference_realized["roc_auc"]
    assert roc.lower_threshold == pytest.approx(ref_auc - 0.15)
    assert {d.method for d in ev.drift} == {"kolmogorov_smirnov", "jensen_shannon", "chi2"}
    assert ev.multivariate_error is not None and ev.multivariate_threshold is not None
    assert ev.multivariate_error > 0 and ev.multivariate_threshold > 0
    assert set(ev.missing_ratio) == set(fitted["good"].registration.schema.feature_names)
    assert ev.missing_ratio["wind_gust"] > 0.3  # missing on purpose in the real data
    assert all(v == 0.0 for v in ev.out_of_range_ratio.values())
    assert ev.drift_ranking and ev.drift_ranking == sorted(ev.drift_ranking, key=lambda x: -x[1])
    assert ev.parity_violation_ratio == 0.0  # served by its own artifact: no skew
    assert ev.known_good_version == fitted["retrain"].registration.version
    assert ev.same_learner is True
    kg_estimate = ev.known_good_estimated["roc_auc"].value
    assert kg_estimate is not None and 0.5 < kg_estimate <= 1
    # Realized: the plain ROC AUC of the served scores, and of the known-good's re-scores.
    labels = rows["label"].astype(int)
    assert ev.realized["roc_auc"] == pytest.approx(roc_auc_score(labels, rows["probability"]))
    kg_scores = fitted["retrain"].score(rows).astype(float)
    assert ev.known_good_realized["roc_auc"] == pytest.approx(roc_auc_score(labels, kg_scores))


def test_a_winter_chunk_drifts_where_a_reference_chunk_does_not(fitted, replay, split):
    good = fitted["good"]
    december = analyse_chunk(good, chunk(replay, len(replay) // CHUNK - 1), 0)
    ref = replay_rows_from(split.reference, good).iloc[:CHUNK]
    own_reference = analyse_chunk(good, ref, 0)
    assert "temp" in december.drifted_features or "dewp" in december.drifted_features
    assert len(december.drifted_features) > len(own_reference.drifted_features)
    ks = {
        name: {d.feature: d.value for d in ev.drift if d.method == "kolmogorov_smirnov"}
        for name, ev in (("december", december), ("may", own_reference))
    }
    assert ks["december"]["temp"] > ks["may"]["temp"]


def replay_rows_from(frame: pd.DataFrame, served_by: FittedVersion) -> pd.DataFrame:
    return replay_rows(
        Split(train=frame.iloc[:0], reference=frame.iloc[:0], replay=frame), served_by
    )


def test_scores_from_another_model_break_rank_correlation_and_parity(fitted, replay):
    good, other = fitted["good"], fitted["no-key-features"]
    rows = chunk(replay, 5)
    normal = analyse_chunk(good, rows, 5, fitted["retrain"])
    swapped = rows.assign(probability=other.score(rows).astype(float))
    wrong = analyse_chunk(good, swapped, 5, fitted["retrain"])
    assert normal.rank_correlation is not None and wrong.rank_correlation is not None
    assert normal.rank_correlation_floor is not None
    assert normal.rank_correlation > normal.rank_correlation_floor
    assert wrong.rank_correlation < normal.rank_correlation_floor
    assert wrong.parity_violation_ratio is not None and wrong.parity_violation_ratio > 0.9


def test_perturbing_five_percent_of_served_scores_shows_as_parity_violations(fitted, replay):
    rows = chunk(replay, 2).copy()
    picked = np.random.default_rng(3).choice(len(rows), size=25, replace=False)
    rows.loc[picked, "probability"] = np.clip(rows.loc[picked, "probability"] + 0.01, 0, 1)
    ev = analyse_chunk(fitted["good"], rows, 2)
    assert ev.parity_violation_ratio == pytest.approx(0.05, abs=0.004)


def test_without_labels_realized_is_none_but_estimates_exist(fitted, replay):
    rows = chunk(replay, 1).assign(label=pd.array([pd.NA] * CHUNK, dtype="Int64"))
    ev = analyse_chunk(fitted["good"], rows, 1, fitted["retrain"])
    assert ev.labelled_rows == 0
    assert all(v is None for v in ev.realized.values())
    assert all(v is None for v in ev.known_good_realized.values())
    assert ev.estimated["roc_auc"].value is not None
    assert all(v is None for s in ev.segments for v in s.realized.values())


def test_segments_per_station(fitted, replay):
    ev = analyse_chunk(fitted["good"], chunk(replay, 3), 3)
    assert [s.segment for s in ev.segments] == ["EWR", "JFK", "LGA"]
    assert sum(s.rows for s in ev.segments) == CHUNK
    for seg in ev.segments:
        est = seg.estimated["roc_auc"]
        assert est.value is not None
        # A third of the rows: a wider band than the whole chunk's.
        whole = ev.estimated["roc_auc"].sampling_error
        assert est.sampling_error is not None and whole is not None
        assert est.sampling_error > whole
        assert seg.realized["roc_auc"] is not None


def test_a_small_segment_is_skipped(fitted, replay):
    rows = chunk(replay, 3)
    rows = pd.concat([rows[rows["origin"] != "EWR"], rows[rows["origin"] == "EWR"].head(10)])
    ev = analyse_chunk(fitted["good"], rows, 3)
    assert [s.segment for s in ev.segments] == ["JFK", "LGA"]


def test_known_good_equal_to_live_leaves_shadow_fields_empty(fitted, replay):
    ev = analyse_chunk(fitted["good"], chunk(replay, 0), 0, fitted["good"])
    assert ev.known_good_version is None and ev.rank_correlation is None
    assert ev.known_good_estimated == {} and ev.parity_violation_ratio == 0.0


def test_batch_analysis_equals_chunk_by_chunk(fitted, replay):
    rows = replay.iloc[: 3 * CHUNK]
    batch = analyse_chunks(fitted["good"], rows, 10, fitted["retrain"], chunk_size=CHUNK)
    assert [e.chunk_index for e in batch] == [10, 11, 12]
    single = analyse_chunk(fitted["good"], chunk(replay, 1), 11, fitted["retrain"])
    assert batch[1].estimated == single.estimated
    assert batch[1].realized == single.realized
    assert batch[1].drift == single.drift
    assert batch[1].segments == single.segments
    assert batch[1].known_good_estimated == single.known_good_estimated

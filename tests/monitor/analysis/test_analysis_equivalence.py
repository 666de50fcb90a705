"""The vectorised paths give NannyML's (and sklearn's, and the schema's) numbers on real data."""

from __future__ import annotations

import warnings
from typing import Any

import nannyml as nml
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from bentos.training.data import LABEL_COLUMN, Split
from contract.schema import ModelSchema
from monitor.analysis.drift import (
    MultivariateDrift,
    data_quality,
    feature_frame,
    multivariate_by_key,
)
from monitor.analysis.estimation import CHUNK_KEY, PROBA, PerformanceEstimator, realized_metrics
from monitor.analysis.univariate import UnivariateDrift

CHUNK = 500


@pytest.fixture(scope="module")
def reference(registrations: dict[str, Any]) -> pd.DataFrame:
    reg = registrations["good"]
    return reg.reference_frame().rename(columns={reg.schema.label.name: "label"})


@pytest.fixture(scope="module")
def live(split: Split, schema: ModelSchema, registrations: dict[str, Any]) -> pd.DataFrame:
    """Four chunks of real replay rows scored by the good model's own booster."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(registrations["good"].artifact_bytes()))
    rows = split.replay[schema.valid_rows(split.replay)].iloc[: 4 * CHUNK].reset_index(drop=True)
    rows[PROBA] = booster.inplace_predict(schema.to_matrix(rows)).astype(float)
    rows["label"] = rows[LABEL_COLUMN]
    rows[CHUNK_KEY] = np.arange(len(rows)) // CHUNK
    return rows


def test_fast_cbpe_equals_nannyml_estimate(reference, live, registrations):
    threshold = registrations["good"].schema.threshold
    estimator = PerformanceEstimator.fit(reference, threshold, CHUNK)
    fast = estimator.estimate(live[PROBA].to_numpy(), live[CHUNK_KEY].to_numpy())
    slow = estimator.estimate_result(live).filter(period="analysis").to_df()
    assert len(slow) == 4 == len(fast)
    for i, row in slow.iterrows():
        for metric in ("roc_auc", "f1", "precision", "recall"):
            est = fast[int(row[("chunk", "key")])][metric]
            assert est.value == pytest.approx(row[(metric, "value")], abs=1e-9)
            assert est.sampling_error == pytest.approx(row[(metric, "sampling_error")])
            assert est.lower == pytest.approx(row[(metric, "lower_confidence_boundary")])
            assert est.upper == pytest.approx(row[(metric, "upper_confidence_boundary")])
            assert est.alert == bool(row[(metric, "alert")]), (i, metric)


def test_realized_metrics_equal_sklearn(live, registrations):
    threshold = registrations["good"].schema.threshold
    part = live.iloc[:CHUNK]
    got = realized_metrics(part, threshold)
    y, p = part["label"].to_numpy(), part[PROBA].to_numpy()
    pred = (p >= threshold).astype(int)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert got["f1"] == pytest.approx(f1_score(y, pred))
    assert got["precision"] == pytest.approx(precision_score(y, pred))
    assert got["recall"] == pytest.approx(recall_score(y, pred))
    one_class = part.assign(label=0)
    assert realized_metrics(one_class, threshold)["roc_auc"] is None
    assert realized_metrics(part.head(10), threshold) == dict.fromkeys(got)


def test_univariate_drift_equals_nannyml_calculator(reference, live, schema):
    ours = UnivariateDrift.fit(reference, schema, CHUNK)
    drifts = ours.calculate(live, live[CHUNK_KEY].to_numpy(), 4)
    calc = nml.UnivariateDriftCalculator(
        column_names=schema.feature_names,
        treat_as_categorical=schema.categorical_names,
        continuous_methods=["kolmogorov_smirnov", "jensen_shannon"],
        categorical_methods=["chi2", "jensen_shannon"],
        chunk_size=CHUNK,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc.fit(feature_frame(reference, schema))
        theirs = calc.calculate(feature_frame(live, schema)).filter(period="analysis").to_df()
    compared = 0
    for i in range(4):
        for d in drifts[i]:
            expected = theirs.loc[i, (d.feature, d.method, "value")]
            assert d.value == pytest.approx(expected, abs=1e-6), (i, d.feature, d.method)
            assert d.alert == bool(theirs.loc[i, (d.feature, d.method, "alert")])
            if d.method != "chi2":
                assert d.threshold == pytest.approx(
                    theirs.loc[i, (d.feature, d.method, "upper_threshold")], rel=1e-6
                )
            compared += 1
    assert compared == 4 * 2 * len(schema.feature_names)


def test_data_quality_matches_the_schema_per_chunk(live, schema):
    rows = live.copy()
    rows.loc[3, "temp"] = 500.0  # out of range
    rows.loc[4, "origin"] = "XYZ"  # unknown category
    rows.loc[5, "humid"] = None  # missing
    quality = data_quality(rows, schema, rows[CHUNK_KEY].to_numpy(), 4)
    for i in range(4):
        part = rows[rows[CHUNK_KEY] == i]
        missing, outside = quality[i]
        assert outside == pytest.approx(schema.out_of_range(part))
        assert missing == pytest.approx({f: float(part[f].isna().mean()) for f in missing})
    assert quality[0][1]["temp"] == pytest.approx(1 / 500)
    assert quality[0][1]["origin"] == pytest.approx(1 / 500)
    assert quality[0][0]["humid"] == pytest.approx(1 / 500)


def test_multivariate_errors_equal_nannyml_reconstruction(reference, live, schema):
    model = MultivariateDrift.fit(reference, schema, CHUNK)
    ours = model.errors(live, live[CHUNK_KEY].to_numpy(), 4)
    theirs = multivariate_by_key(model.result(live))
    assert len(theirs) == 4
    for i in range(4):
        value, upper, alert = ours[i]
        t_value, t_upper, t_alert = theirs[str(i)]
        assert value == pytest.approx(t_value, rel=1e-9)
        assert upper == pytest.approx(t_upper)
        assert alert == t_alert

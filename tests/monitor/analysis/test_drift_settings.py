"""Per-feature drift settings on a real analysis: a seasonal category against an all-year
reference drifts in a summer-only chunk; ignored, it raises no alert, is not ranked, is left
out of the reconstruction and exports no alert series. Real XGBoost, NannyML and metrics on
small synthetic data trained here."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from prometheus_client.parser import text_string_to_metric_families

from contract.registration import Registration
from contract.schema import Feature, LabelDefinition, ModelSchema
from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.analysis.report import drift_settings_table
from monitor.core.drift_settings import DriftSettings
from monitor.core.evidence import ChunkEvidence
from monitor.decision.drift_policy import parse_drift
from monitor.metrics.detail import Detail
from monitor.metrics.registry import MonitorMetrics

SEASONS = ["winter", "spring", "summer", "autumn"]
SCHEMA = ModelSchema(
    features=[
        Feature(name="season", dtype="category", categories=SEASONS),
        Feature(name="temp"),
        Feature(name="wind"),
    ],
    label=LabelDefinition(name="rain"),
)
CHUNK = 300


def days(rng: np.random.Generator, n: int, seasons: list[str]) -> pd.DataFrame:
    season = rng.choice(seasons, size=n)
    base = pd.Series(season).map({"winter": 2.0, "spring": 12.0, "summer": 24.0, "autumn": 11.0})
    return pd.DataFrame(
        {
            "season": season,
            "temp": base.to_numpy() + rng.normal(scale=3.0, size=n),
            "wind": rng.normal(size=n),
        }
    )


def labelled(frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    logit = 1.5 * frame["wind"].to_numpy() - 0.08 * (frame["temp"].to_numpy() - 12)
    return (logit + rng.logistic(size=len(frame)) > 0).astype(int)


@pytest.fixture(scope="module")
def fitted() -> FittedVersion:
    rng = np.random.default_rng(7)
    train = days(rng, 3000, SEASONS)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(SCHEMA.to_matrix(train), label=labelled(train, rng)),
        num_boost_round=20,
    )
    reference = days(rng, 1500, SEASONS)  # all year
    proba = booster.inplace_predict(SCHEMA.to_matrix(reference))
    rows = reference.assign(rain=labelled(reference, rng), probability=proba.astype(float))
    artifact = bytes(booster.save_raw("ubj"))
    registration = Registration.model_validate(
        {
            "model": "daily-rain",
            "version": "v1",
            "schema": SCHEMA.model_dump(),
            "reference": rows.to_dict(orient="records"),
            "artifact": base64.b64encode(artifact).decode(),
        }
    )
    return FittedVersion.fit(registration, chunk_size=CHUNK)


def summer_chunk(fitted: FittedVersion) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    frame = days(rng, CHUNK, ["summer"])
    proba = fitted.score(frame).astype(float)
    return frame.assign(probability=proba, label=labelled(frame, rng), seq=np.arange(1, CHUNK + 1))


def test_an_ignored_seasonal_feature_raises_no_drift_alert(fitted: FittedVersion) -> None:
    rows = summer_chunk(fitted)
    [plain] = analyse_chunks(fitted, rows, 0, chunk_size=CHUNK)
    assert "season" in plain.drifted_features  # a summer chunk against an all-year reference
    settings = parse_drift({"features": {"season": {"ignore": True}}})
    [chunk] = analyse_chunks(fitted, rows, 0, chunk_size=CHUNK, drift_settings=settings)
    season = [d for d in chunk.drift if d.feature == "season"]
    assert {d.method for d in season} == {"chi2", "jensen_shannon"}
    assert all(d.ignored and not d.alert for d in season)
    # Its drift is still measured (the same values), only not alerted on.
    before = {(d.feature, d.method): d.value for d in plain.drift}
    assert all(d.value == pytest.approx(before[("season", d.method)]) for d in season)
    assert "season" not in chunk.drifted_features
    assert "season" not in dict(chunk.drift_ranking)
    assert chunk.drift_settings == {"season": {"ignore": True}}
    # The other features are judged as before; the reconstruction leaves season out.
    others = [(d.feature, d.method, d.alert) for d in chunk.drift if d.feature != "season"]
    assert others == [(d.feature, d.method, d.alert) for d in plain.drift if d.feature != "season"]
    reconstruction = fitted.multivariate_for(frozenset({"season"}))
    assert reconstruction is not None
    assert list(reconstruction.calculator.column_names) == ["temp", "wind"]


def test_a_method_and_threshold_of_its_own(fitted: FittedVersion) -> None:
    rows = summer_chunk(fitted)
    [plain] = analyse_chunks(fitted, rows, 0, chunk_size=CHUNK)
    js = next(d for d in plain.drift if (d.feature, d.method) == ("temp", "jensen_shannon"))
    assert "temp" in plain.drifted_features and js.threshold is not None and js.value > js.threshold
    above = f"{min(1.0, js.value + 0.05):.2f}"
    settings = parse_drift({"features": {"temp": {"method": "jensen_shannon", "threshold": above}}})
    [chunk] = analyse_chunks(fitted, rows, 0, chunk_size=CHUNK, drift_settings=settings)
    temp = {d.method: d for d in chunk.drift if d.feature == "temp"}
    assert temp["kolmogorov_smirnov"].ignored and not temp["kolmogorov_smirnov"].alert
    assert temp["jensen_shannon"].threshold == float(above)
    assert not temp["jensen_shannon"].alert and not temp["jensen_shannon"].ignored
    assert "temp" not in chunk.drifted_features
    assert "temp" in dict(chunk.drift_ranking)  # still ranked: only `ignore` leaves it out
    assert chunk.drift_settings["temp"] == {
        "method": "jensen_shannon",
        "threshold": above,
        "referenceThreshold": js.threshold,
    }
    low = parse_drift({"features": {"wind": {"method": "jensen_shannon", "threshold": "0"}}})
    [windy] = analyse_chunks(fitted, rows, 0, chunk_size=CHUNK, drift_settings=low)
    assert "wind" in windy.drifted_features  # threshold 0: any drift at all alerts


def test_settings_that_cannot_apply_are_left_out_and_named(fitted: FittedVersion) -> None:
    settings = parse_drift(
        {"features": {"season": {"method": "kolmogorov_smirnov"}, "typo": {"ignore": True}}}
    )
    categorical = {f.name: f.dtype == "category" for f in SCHEMA.features}
    problems = settings.problems(categorical)
    assert problems == [
        "spec.drift.features.season.method: kolmogorov_smirnov does not apply to a categorical "
        "feature; use one of ['chi2', 'jensen_shannon']",
        "spec.drift.features.typo: no such feature in the schema",
    ]
    rows = summer_chunk(fitted)
    [chunk] = analyse_chunks(fitted, rows, 0, chunk_size=CHUNK, drift_settings=settings)
    assert "season" in chunk.drifted_features and chunk.drift_settings == {}
    assert fitted.multivariate_for(frozenset({"typo"})) is fitted.multivariate


def test_ignored_features_export_no_alert_series_and_the_report_lists_them(
    fitted: FittedVersion,
) -> None:
    rows = summer_chunk(fitted)
    metrics = MonitorMetrics()
    metrics.detail[fitted.key[0]] = Detail(per_feature=True)  # every feature
    [plain] = analyse_chunks(fitted, rows, 0, chunk_size=CHUNK)
    metrics.publish_chunk(plain)
    assert ("season", "chi2") in alert_series(metrics)
    settings = DriftSettings.from_json({"season": {"ignore": True}})
    [chunk] = analyse_chunks(fitted, rows, 0, chunk_size=CHUNK, drift_settings=settings)
    metrics.publish_chunk(chunk)  # the series from before the setting goes away
    series = alert_series(metrics)
    assert not {k for k in series if k[0] == "season"}
    assert ("temp", "jensen_shannon") in series
    values = samples(metrics, "modelguard_feature_drift")
    assert ("season", "chi2") in values  # the statistic itself is still exported
    table = drift_settings_table([chunk])
    assert "season" in table and "ignored" in table
    assert drift_settings_table([plain]) == ""


def samples(metrics: MonitorMetrics, name: str) -> dict[tuple[str, str], float]:
    text = metrics.exposition().decode()
    return {
        (s.labels["feature"], s.labels["method"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == name
        for s in family.samples
    }


def alert_series(metrics: MonitorMetrics) -> dict[tuple[str, str], float]:
    return samples(metrics, "modelguard_feature_drift_alert")


def test_old_evidence_without_settings_still_loads() -> None:
    data = ChunkEvidence("m", "v", 0, 1, 1, 1, "", "").to_dict()
    del data["drift_settings"]
    data["drift"] = [
        {"feature": "f", "method": "chi2", "value": 1.0, "threshold": None, "alert": True}
    ]
    loaded = ChunkEvidence.from_dict(data)
    assert loaded.drift_settings == {} and loaded.drift[0].ignored is False
    assert loaded.drifted_features == ["f"]

"""Attribution drift: real XGBoost TreeSHAP on synthetic data with a known answer, then the
real no-key-features release (trained with humid, dewp, visib missing, so it never splits on
them) through `analyse_chunks`, metrics and the report."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from prometheus_client.parser import text_string_to_metric_families

from bentos.training.data import Split
from contract.schema import Feature, LabelDefinition, ModelSchema
from monitor.analysis import attribution
from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.analysis.drift import drift_ranking
from monitor.analysis.report import explain_chunk
from monitor.core.evidence import ChunkEvidence, FeatureDrift
from monitor.metrics.detail import Detail
from monitor.metrics.registry import MonitorMetrics
from tests.monitor.analysis.test_analysis import replay_rows

CHUNK = 500
SYNTHETIC = ModelSchema(
    features=[Feature(name="used"), Feature(name="weak"), Feature(name="ignored")],
    label=LabelDefinition(name="y"),
)


@pytest.fixture(scope="module")
def synthetic_booster() -> xgb.Booster:
    """y depends on `used` strongly and `weak` a little; `ignored` is constant in training,
    so no tree can split on it: its TreeSHAP contribution is exactly 0 on any row."""
    rng = np.random.default_rng(3)
    n = 4000
    used, weak = rng.normal(size=n), rng.normal(size=n)
    y = (2.0 * used + 0.3 * weak + rng.normal(scale=0.5, size=n) > 0).astype(int)
    x = np.column_stack([used, weak, np.full(n, 7.0)]).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=30)


def synthetic_frame(rng: np.random.Generator, n: int, ignored_shift: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "used": rng.normal(size=n),
            "weak": rng.normal(size=n),
            "ignored": 7.0 + ignored_shift + rng.normal(size=n) * (1 + ignored_shift),
        }
    )


def test_contributions_add_up_to_the_margin(synthetic_booster: xgb.Booster) -> None:
    frame = synthetic_frame(np.random.default_rng(0), 300, ignored_shift=5.0)
    x = SYNTHETIC.to_matrix(frame)
    contribs = attribution.contributions(synthetic_booster, x)
    margin = synthetic_booster.predict(xgb.DMatrix(x), output_margin=True)
    bias = synthetic_booster.predict(xgb.DMatrix(x), pred_contribs=True)[:, -1]
    assert contribs.shape == (300, 3)
    np.testing.assert_allclose(contribs.sum(axis=1) + bias, margin, atol=1e-4)
    assert np.all(contribs[:, 2] == 0.0)  # the feature no tree splits on


def test_an_ignored_feature_has_no_reliance_and_ranks_last_even_when_it_drifts(
    synthetic_booster: xgb.Booster,
) -> None:
    rng = np.random.default_rng(1)
    reference = synthetic_frame(rng, 2000, ignored_shift=0.0)
    live = synthetic_frame(rng, 1000, ignored_shift=4.0)  # `ignored` moves far; the rest not
    ref = attribution.reliance(synthetic_booster, SYNTHETIC, reference)
    (now, rows), (now2, _) = attribution.chunk_reliance(
        synthetic_booster, SYNTHETIC, live, [0, 500, 1000]
    )
    assert rows == attribution.SAMPLE_ROWS
    assert ref["ignored"] == 0.0 and now["ignored"] == 0.0 and now2["ignored"] == 0.0
    assert ref["used"] > 5 * ref["weak"] > 0
    assert now["used"] == pytest.approx(ref["used"], rel=0.25)  # no drift: reliance stays
    shift = attribution.attribution_shift(now, ref)
    assert shift["ignored"] == 0.0 and abs(shift["used"]) < 0.25

    drift = [
        FeatureDrift("ignored", "jensen_shannon", 0.9, 0.1, True),
        FeatureDrift("weak", "jensen_shannon", 0.2, 0.1, True),
        FeatureDrift("used", "jensen_shannon", 0.1, 0.1, False),
    ]
    flat = {"used": 1.0, "weak": 1.0, "ignored": 1.0}
    # Without attributions (equal importances) the most drifting feature would rank first ...
    assert drift_ranking(drift, flat, flat)[0][0] == "ignored"
    # ... with them, it does not rank at all: below every listed feature.
    ranked = drift_ranking(drift, flat, flat, now)
    assert [f for f, _ in ranked] == ["used", "weak"]


def test_sample_positions_are_bounded_and_inside_each_chunk() -> None:
    parts = attribution.sample_positions([0, 500, 530, 1530], per_chunk=100)
    assert [len(p) for p in parts] == [100, 30, 100]
    assert parts[0][0] == 0 and parts[0][-1] == 499
    assert list(parts[1]) == list(range(500, 530))
    assert parts[2].min() >= 530 and parts[2].max() == 1529 and len(set(parts[2])) == 100


@pytest.fixture(scope="module")
def fitted(registrations: dict[str, Any]) -> dict[str, FittedVersion]:
    return {n: FittedVersion.fit(registrations[n], CHUNK) for n in ("good", "no-key-features")}


def drifted_humid(split: Split, served_by: FittedVersion) -> pd.DataFrame:
    """Two replay chunks; in the second `humid` is pushed to the top of its range."""
    rows = replay_rows(split, served_by).iloc[: 2 * CHUNK].reset_index(drop=True)
    second = rows.index >= CHUNK
    rows.loc[second, "humid"] = np.clip(rows.loc[second, "humid"] + 40, 0, 100)
    rows["probability"] = served_by.score(rows).astype(float)  # as served, after the drift
    return rows


def test_a_drifting_feature_the_model_never_uses_does_not_rank(
    fitted: dict[str, FittedVersion], split: Split
) -> None:
    worse = fitted["no-key-features"]
    rows = drifted_humid(split, worse)
    first, drifting = analyse_chunks(worse, rows, 0, fitted["good"])
    assert "humid" in drifting.drifted_features
    for name in ("humid", "dewp", "visib"):  # NaN in training: no split on them
        assert worse.reference_reliance[name] == 0.0
        assert drifting.reliance[name] == 0.0 and drifting.attribution_shift[name] == 0.0
    assert "humid" not in dict(drifting.drift_ranking)
    assert drifting.attribution_rows == attribution.SAMPLE_ROWS
    assert set(drifting.reliance) == set(worse.registration.schema.feature_names)
    assert sum(drifting.reliance.values()) > 0
    assert drifting.reference_roc_auc == pytest.approx(float(np.mean(worse.reference_auc)))

    # The good model leans on humid: the same drift moves its reliance and ranks it.
    good = fitted["good"]
    _, good_drifting = analyse_chunks(good, drifted_humid(split, good), 0)
    assert good.reference_reliance["humid"] > 0.05
    assert good_drifting.reliance["humid"] > 0
    assert good_drifting.attribution_shift["humid"] != 0.0

    # The report explains the drifting chunk in one table: humid is listed as not used.
    table = explain_chunk([first, drifting])
    assert f"Why chunk {drifting.chunk_index}" in table and "<table class=explain>" in table
    humid_row = next(r for r in table.split("<tr>") if r.startswith("<td>humid</td>"))
    assert "not used by the model" in humid_row and "0 (not ranked)" in humid_row
    assert "estimated ROC AUC" in table and "on the reference" in table
    good_table = explain_chunk([good_drifting])
    humid_good = next(r for r in good_table.split("<tr>") if r.startswith("<td>humid</td>"))
    assert "not used by the model" not in humid_good

    # Stored and read back, the attribution fields survive.
    back = ChunkEvidence.from_dict(drifting.to_dict())
    assert back.reliance == drifting.reliance and back.attribution_rows == attribution.SAMPLE_ROWS


def test_attributions_are_published_with_bounded_labels(
    fitted: dict[str, FittedVersion], split: Split
) -> None:
    worse = fitted["no-key-features"]
    (ev,) = analyse_chunks(worse, replay_rows(split, worse).iloc[:CHUNK], 0)
    m = MonitorMetrics()
    m.detail[worse.key[0]] = Detail(per_feature=True)  # every feature (spec.metrics)
    m.publish_chunk(ev)
    got: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for s in family.samples:
            if s.name.startswith("modelguard_feature_attribution"):
                assert set(s.labels) == {"model", "version", "feature"}
                assert (s.labels["model"], s.labels["version"]) == worse.key
                got.setdefault(s.name, {})[s.labels["feature"]] = s.value
    names = set(worse.registration.schema.feature_names)
    assert set(got) == {
        "modelguard_feature_attribution",
        "modelguard_feature_attribution_reference",
        "modelguard_feature_attribution_shift",
    }
    assert all(set(v) == names for v in got.values())
    assert got["modelguard_feature_attribution"] == pytest.approx(ev.reliance)
    assert got["modelguard_feature_attribution_reference"]["humid"] == 0.0
    assert m.forget_version(*worse.key) > 0
    assert "modelguard_feature_attribution{" not in m.exposition().decode()


def test_the_sampled_reference_reliance_is_close_to_the_all_rows_one(
    synthetic_booster: xgb.Booster,
) -> None:
    reference = synthetic_frame(np.random.default_rng(2), 4000, ignored_shift=0.0)
    full = attribution.reliance(synthetic_booster, SYNTHETIC, reference)
    sampled = attribution.reliance(synthetic_booster, SYNTHETIC, reference, max_rows=1000)
    assert attribution.reliance(synthetic_booster, SYNTHETIC, reference, max_rows=4000) == full
    total = sum(full.values())
    assert sampled["ignored"] == 0.0 and sampled != full
    assert all(abs(sampled[f] - full[f]) < 0.02 * total for f in full)

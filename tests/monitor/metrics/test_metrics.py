"""Monitor metrics: contract names and labels, parsed back from the exposition text."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.evidence import ChunkEvidence, Estimate, FeatureDrift, SegmentEvidence
from monitor.core.gap import summarize
from monitor.metrics import process as metrics_module
from monitor.metrics.detail import Detail
from monitor.metrics.registry import MonitorMetrics


def samples(m: MonitorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: MonitorMetrics, name: str, **labels: str) -> float | None:
    return samples(m).get((name, tuple(sorted(labels.items()))))


def chunk(version: str = "v1", realized: float | None = 0.8) -> ChunkEvidence:
    return ChunkEvidence(
        model="rain",
        version=version,
        chunk_index=3,
        rows=500,
        first_seq=1,
        last_seq=500,
        start_time="2013-07-01T00:00:00+00:00",
        end_time="2013-07-08T00:00:00+00:00",
        estimated={
            "roc_auc": Estimate(0.81, 0.76, 0.86, alert=True),
            "f1": Estimate(0.5, None, None),
        },
        realized={"roc_auc": realized},
        labelled_rows=400,
        realized_sampling_error={"roc_auc": None if realized is None else 0.02},
        drift=[FeatureDrift("temp", "jensen_shannon", 0.3, 0.1, True)],
        multivariate_error=1.2,
        multivariate_threshold=1.5,
        missing_ratio={"wind_gust": 0.7},
        out_of_range_ratio={"temp": 0.01},
        drift_ranking=[("temp", 0.9)],
        segments=[
            SegmentEvidence("EWR", 170, {"roc_auc": Estimate(0.7, 0.6, 0.8)}, {"roc_auc": 0.75})
        ],
        parity_violation_ratio=0.0,
        known_good_version="v0",
        rank_correlation=0.97,
        rank_correlation_floor=0.9,
        known_good_estimated={"roc_auc": Estimate(0.83)},
    )


def test_a_chunk_is_published_under_the_contract_names() -> None:
    m = MonitorMetrics()
    m.detail["rain"] = Detail(per_feature=True)  # every metric and feature
    m.publish_chunk(chunk())
    mv = {"model": "rain", "version": "v1"}
    est = {**mv, "metric": "roc_auc", "segment": "all"}
    assert value(m, "modelguard_estimated_performance", **est) == 0.81
    assert value(m, "modelguard_estimated_performance_lower", **est) == 0.76
    assert value(m, "modelguard_estimated_performance_upper", **est) == 0.86
    assert value(m, "modelguard_estimated_performance_alert", **mv, metric="roc_auc") == 1
    assert value(m, "modelguard_estimated_performance_alert", **mv, metric="f1") == 0
    assert value(m, "modelguard_realized_performance", **est) == 0.8
    error = "modelguard_realized_performance_sampling_error"
    assert value(m, error, **mv, metric="roc_auc") == 0.02
    seg = {**est, "segment": "EWR"}
    assert value(m, "modelguard_estimated_performance", **seg) == 0.7
    assert value(m, "modelguard_realized_performance", **seg) == 0.75
    kg = {**mv, "metric": "roc_auc"}
    assert value(m, "modelguard_known_good_estimated_performance", **kg) == 0.83
    assert value(m, "modelguard_rank_correlation", **mv) == 0.97
    assert value(m, "modelguard_rank_correlation_floor", **mv) == 0.9
    assert value(m, "modelguard_score_parity_violation_ratio", **mv) == 0.0
    drift = {**mv, "feature": "temp", "method": "jensen_shannon"}
    assert value(m, "modelguard_feature_drift", **drift) == 0.3
    assert value(m, "modelguard_feature_drift_alert", **drift) == 1
    assert value(m, "modelguard_feature_drift_importance", **mv, feature="temp") == 0.9
    assert value(m, "modelguard_multivariate_drift_error", **mv) == 1.2
    assert value(m, "modelguard_multivariate_drift_threshold", **mv) == 1.5
    assert value(m, "modelguard_multivariate_drift_alert", **mv) == 0
    assert value(m, "modelguard_data_missing_ratio", **mv, feature="wind_gust") == 0.7
    assert value(m, "modelguard_data_out_of_range_ratio", **mv, feature="temp") == 0.01
    assert value(m, "modelguard_unlabelled_ratio", **mv) == 0.2
    assert value(m, "modelguard_chunks_analysed_total", **mv) == 1
    # an unknown bound is absent, never a stale or made-up number
    f1 = {**mv, "metric": "f1", "segment": "all"}
    assert value(m, "modelguard_estimated_performance_lower", **f1) is None


def test_an_unknown_value_removes_the_previous_one() -> None:
    m = MonitorMetrics()
    m.publish_chunk(chunk(realized=0.8))
    m.publish_chunk(chunk(realized=None))
    est = {"model": "rain", "version": "v1", "metric": "roc_auc", "segment": "all"}
    assert value(m, "modelguard_realized_performance", **est) is None
    error = "modelguard_realized_performance_sampling_error"
    assert value(m, error, model="rain", version="v1", metric="roc_auc") is None


def test_operator_and_ingest_series() -> None:
    m = MonitorMetrics()
    m.publish_cumulative("rain", "v1", summarize([(-0.05, 500), (-0.03, 500)]), None)
    m.record_rollback("ml", "rain", "estimated_gap", "auto")
    m.record_rollback("ml", "rain", "estimated_gap", "auto")
    m.set_condition("ml", "rain", "Degraded", True)
    m.set_condition("ml", "rain", "Ready", False)
    m.observe_analysis(1.5, ok=True)
    m.observe_analysis(0.2, ok=False, model="rain")
    mv = {"model": "rain", "version": "v1"}
    assert value(m, "modelguard_estimated_gap_cumulative", **mv) == pytest.approx(-0.04)
    lower = value(m, "modelguard_estimated_gap_cumulative_lower", **mv)
    upper = value(m, "modelguard_estimated_gap_cumulative_upper", **mv)
    assert lower is not None and upper is not None and lower < -0.04 < upper
    assert value(m, "modelguard_estimated_gap_rows", **mv) == 1000
    assert value(m, "modelguard_estimated_gap_chunks", **mv) == 2
    assert value(m, "modelguard_realized_gap_cumulative", **mv) is None
    rb = {"namespace": "ml", "modelmonitor": "rain", "trigger": "estimated_gap", "mode": "auto"}
    assert value(m, "modelguard_rollbacks_total", **rb) == 2
    cond = {"namespace": "ml", "modelmonitor": "rain"}
    assert value(m, "modelguard_condition", **cond, type="Degraded") == 1
    assert value(m, "modelguard_condition", **cond, type="Ready") == 0
    assert value(m, "modelguard_analysis_duration_seconds_count") == 2
    assert value(m, "modelguard_analysis_failures_total", model="rain") == 1
    assert (value(m, "modelguard_last_successful_analysis_timestamp_seconds") or 0) > 1.6e9


def test_forget_version_removes_only_that_versions_series() -> None:
    m = MonitorMetrics()
    m.publish_chunk(chunk("v1"))
    m.publish_chunk(chunk("v2"))
    m.publish_cumulative("rain", "v1", summarize([(-0.01, 500)]), -0.02)
    assert m.forget_version("rain", "v1") > 20
    left = {dict(labels).get("version") for (_, labels) in samples(m)}
    assert "v1" not in left and "v2" in left
    m.publish_chunk(chunk("v1"))  # a version can come back (redeployed)
    assert value(m, "modelguard_rank_correlation", model="rain", version="v1") == 0.97


def test_module_functions_write_to_the_process_registry_not_the_global_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The module-level functions write to `METRICS` (looked up at call time): a fresh
    instance per test, so the counts are exact, whatever other tests recorded."""
    fresh = MonitorMetrics()
    monkeypatch.setattr(metrics_module, "METRICS", fresh)
    metrics_module.records_ingested("solo", "v7", 5)
    metrics_module.records_rejected("validation", 2)
    metrics_module.labels_ingested("solo", 3)
    metrics_module.labels_joined("solo", 1)
    metrics_module.record_rollback("ml", "solo", "gate", "auto")
    metrics_module.reconcile_error("ml", "solo")
    assert value(fresh, "modelguard_records_ingested_total", model="solo", version="v7") == 5
    assert value(fresh, "modelguard_records_rejected_total", reason="validation") == 2
    assert value(fresh, "modelguard_labels_ingested_total", model="solo") == 3
    assert value(fresh, "modelguard_labels_joined_total", model="solo") == 1
    rb = {"namespace": "ml", "modelmonitor": "solo", "trigger": "gate", "mode": "auto"}
    assert value(fresh, "modelguard_rollbacks_total", **rb) == 1
    cond = {"namespace": "ml", "modelmonitor": "solo"}
    assert value(fresh, "modelguard_reconcile_errors_total", **cond) == 1
    stamp = value(fresh, "modelguard_last_record_timestamp_seconds", model="solo")
    assert stamp is not None and abs(stamp - time.time()) < 60
    # Its own registry: the series are in `fresh.registry`, none in prometheus_client's global.
    assert fresh.registry is not REGISTRY
    assert fresh.registry.get_sample_value("modelguard_labels_joined_total", {"model": "solo"}) == 1
    assert REGISTRY.get_sample_value("modelguard_labels_joined_total", {"model": "solo"}) is None
    assert metrics_module.forget_version("solo", "v7") == 1
    assert value(fresh, "modelguard_records_ingested_total", model="solo", version="v7") is None


def test_names_follow_prometheus_conventions(tmp_path: Path) -> None:
    m = MonitorMetrics()
    m.publish_chunk(chunk())
    m.record_rollback("ml", "rain", "parity", "dryRun")
    text = m.exposition().decode()
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("modelguard_")
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is on PATH on this machine (Debian package)"
    out = subprocess.run([promtool, "check", "metrics"], input=text, text=True, capture_output=True)
    assert out.returncode == 0, out.stdout + out.stderr

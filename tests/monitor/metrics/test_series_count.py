"""How many series one model version exports: bounded by default, every feature on request.

A count, not a timing: a realistic 10-feature chunk (both drift methods per feature,
attributions, data quality, intervals, nowcast, track record, one segment) published through
`MonitorMetrics` with its cumulative gaps and chunking status, then the exposition parsed.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.evidence import FeatureDrift
from monitor.core.gap import summarize
from monitor.decision.candidates import CandidateVerdict
from monitor.decision.policy import PolicyError, parse_policy
from monitor.loops.background import chunk_plans
from monitor.memory.state import ChunkingStatus
from monitor.metrics.detail import TOP_K, Detail
from monitor.metrics.registry import MonitorMetrics
from tests.monitor.metrics.evidence import FEATURES, realistic

LIMIT = 60  # docs/contracts.md §6: series per model version with the defaults


def per_version(m: MonitorMetrics) -> Counter[tuple[str, str]]:
    """(model, version) -> series exposed for it (every sample, counters' _created too)."""
    out: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(m.exposition().decode()):
        for s in family.samples:
            if "version" in s.labels and "model" in s.labels:
                out[(s.labels["model"], s.labels["version"])] += 1
    return out


def publish(m: MonitorMetrics, versions: int, model: str = "rain") -> None:
    for i in range(versions):
        version = f"v{i}"
        m.publish_chunk(realistic(model, version))
        m.publish_cumulative(model, version, summarize([(-0.01, 500), (-0.03, 500)]), -0.02)
        m.publish_chunking(
            model, version, ChunkingStatus("rows", 500, None, 500, 0.025, 5000, 120, 380)
        )
        m.child(m.records_ingested, model, version).inc(500)


def features_of(m: MonitorMetrics, name: str) -> set[str]:
    return {
        s.labels["feature"]
        for family in text_string_to_metric_families(m.exposition().decode())
        for s in family.samples
        if s.name == name
    }


def test_the_default_set_is_at_most_60_series_per_version_for_1_and_10_versions() -> None:
    for versions in (1, 10):
        m = MonitorMetrics()
        publish(m, versions)
        counts = per_version(m)
        assert len(counts) == versions
        assert max(counts.values()) <= LIMIT, counts
        assert len(set(counts.values())) == 1  # the same per version, whatever the number


def test_per_feature_exports_every_feature_and_metric() -> None:
    bounded, full = MonitorMetrics(), MonitorMetrics()
    full.set_detail("rain", True, frozenset({"roc_auc"}))
    publish(bounded, 1)
    publish(full, 1)
    assert per_version(full)[("rain", "v0")] > 3 * per_version(bounded)[("rain", "v0")]
    assert features_of(full, "modelguard_data_missing_ratio") == set(FEATURES)
    assert len(features_of(bounded, "modelguard_data_missing_ratio")) == TOP_K


def test_the_default_set_keeps_the_worst_features_for_the_alert_rules() -> None:
    m = MonitorMetrics()
    ev = realistic()
    # the last feature suddenly goes missing and out of range: it must be exported
    ev = dataclasses.replace(
        ev,
        missing_ratio={**ev.missing_ratio, "hour": 0.9},
        out_of_range_ratio={**ev.out_of_range_ratio, "hour": 0.5},
    )
    m.publish_chunk(ev)
    assert "hour" in features_of(m, "modelguard_data_missing_ratio")
    assert "hour" in features_of(m, "modelguard_data_out_of_range_ratio")
    top = {f for f, _ in sorted(ev.drift_ranking, key=lambda x: -x[1])[:TOP_K]}
    assert features_of(m, "modelguard_feature_drift_alert") == top
    assert features_of(m, "modelguard_feature_drift_importance") == top
    relied = {f for f, _ in sorted(ev.reliance.items(), key=lambda x: -x[1])[:TOP_K]}
    assert features_of(m, "modelguard_feature_attribution") == relied


def test_a_feature_leaving_the_top_k_loses_its_series() -> None:
    m = MonitorMetrics()
    first = realistic()
    m.publish_chunk(first)
    assert "temp" in features_of(m, "modelguard_feature_drift")
    ranking = [(f, 0.0 if f == "temp" else s) for f, s in first.drift_ranking]
    m.publish_chunk(dataclasses.replace(first, drift_ranking=ranking))
    assert "temp" not in features_of(m, "modelguard_feature_drift")
    assert "temp" not in features_of(m, "modelguard_feature_drift_importance")
    assert per_version(m)[("rain", "v1")] <= LIMIT


def test_turning_per_feature_off_removes_the_extra_series() -> None:
    m = MonitorMetrics()
    m.detail["rain"] = Detail(per_feature=True)
    m.publish_chunk(realistic())
    m.set_detail("rain", False, frozenset({"roc_auc"}))
    m.publish_chunk(realistic())
    assert per_version(m)[("rain", "v1")] <= LIMIT
    assert features_of(m, "modelguard_feature_attribution_reference") == set()


def test_an_ignored_feature_is_never_among_the_drifting() -> None:
    m = MonitorMetrics()
    ev = realistic()
    drift = [dataclasses.replace(d, ignored=d.feature == "temp") for d in ev.drift]
    m.publish_chunk(dataclasses.replace(ev, drift=drift))
    assert "temp" not in features_of(m, "modelguard_feature_drift_alert")
    assert all(isinstance(d, FeatureDrift) for d in drift)


def test_versions_gone_from_the_store_lose_every_series_candidates_included() -> None:
    m = MonitorMetrics()
    publish(m, 3)
    gap = summarize([(-0.01, 500)])
    m.publish_candidates("rain", [CandidateVerdict("v1", "Inconclusive", "R", "m", "v0", gap, gap)])
    assert per_version(m)[("rain", "v1")] > 0
    assert m.retain_versions("rain", ["v2"]) > 0
    assert set(per_version(m)) == {("rain", "v2")}
    assert m.retain_versions("rain", ["v2"]) == 0


def test_spec_metrics_per_feature_is_parsed_validated_and_planned() -> None:
    base = {"model": "rain", "targetRef": {"name": "rain"}}
    assert parse_policy(base).per_feature is False
    assert parse_policy({**base, "metrics": {"perFeature": True}}).per_feature is True
    with pytest.raises(PolicyError, match=r"spec\.metrics\.perFeature"):
        parse_policy({**base, "metrics": {"perFeature": "yes"}})
    bounds = {"realized": {"f1": {"lower": "0.5"}}}
    plans = chunk_plans([{"spec": {**base, "metrics": {"perFeature": True}, "thresholds": bounds}}])
    assert plans["rain"].per_feature is True
    assert plans["rain"].metrics == frozenset({"roc_auc", "f1"})

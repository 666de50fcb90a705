"""Per-feature drift settings from the ModelMonitor through the real analysis loop and the
real offline operator: real registrations (trained models), real SQLite, `analysis_pass`
(which reads the ModelMonitors from `MONITOR_POLICY_FILE` and calls `run_cycle`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bentos.training.data import Split
from monitor.kube.offline import offline_target
from monitor.loops.background import analysis_pass, chunk_plans
from monitor.metrics import process
from monitor.operator.reconciler import Operator
from monitor.store.sqlite import SqliteStore
from tests.integration.test_chunking_policy import fill, settings_for


def drifted(store: SqliteStore, model: str) -> set[str]:
    return {f for c in store.chunks(model) for f in c.drifted_features}


def alert_features(model: str, version: str) -> set[str]:
    text = process.METRICS.exposition().decode()
    return {
        s.labels["feature"]
        for family in text_string_to_metric_families(text)
        if family.name == "modelguard_feature_drift_alert"
        for s in family.samples
        if (s.labels["model"], s.labels["version"]) == (model, version)
    }


def test_ignored_features_raise_no_drift_through_the_cycle_and_show_in_status(
    tmp_path: Path, split: Split, registrations: dict[str, Any]
) -> None:
    reg = registrations["good"]
    plain_dir, set_dir = tmp_path / "plain", tmp_path / "set"
    plain_dir.mkdir()
    set_dir.mkdir()
    plain = settings_for(plain_dir, {reg.model: {"chunkSize": 100}})
    with SqliteStore(plain.store.db_path) as store:
        fill(store, split, reg, 0, 300)
        analysis_pass(store, plain)()
        found = sorted(drifted(store, reg.model))
    assert len(found) >= 2, found  # later months against the training reference drift
    ignored, raised = found[:-1], found[-1]
    features: dict[str, Any] = {f: {"ignore": True} for f in ignored}
    features[raised] = {"method": "jensen_shannon", "threshold": "1"}  # JS never exceeds 1
    policy = {reg.model: {"chunkSize": 100, "drift": {"features": features}}}
    settings = settings_for(set_dir, policy)
    with SqliteStore(settings.store.db_path) as store:
        fill(store, split, reg, 0, 300)
        produced = analysis_pass(store, settings)()
        assert len(produced) == 3
        assert drifted(store, reg.model).isdisjoint(found)
        for chunk in store.chunks(reg.model):
            assert {d.feature for d in chunk.drift if d.ignored} >= set(ignored)
            assert set(ignored).isdisjoint(dict(chunk.drift_ranking))
            assert sorted(chunk.drift_settings) == found
        assert set(ignored).isdisjoint(alert_features(reg.model, reg.version))

        target = offline_target(store, "demo", policy_file=settings.operator.policy_file)
        [result] = Operator(store, target).reconcile_once()
        assert result.status["drift"] == {"features": {**features}}
        conditions = {c.type: c for c in result.decision.conditions} if result.decision else {}
        assert conditions["DriftDetected"].reason != "FeatureDrift"


def test_a_setting_the_schema_cannot_take_is_named_in_policy_unusable(
    tmp_path: Path, split: Split, registrations: dict[str, Any]
) -> None:
    reg = registrations["good"]
    features = {"origin": {"method": "kolmogorov_smirnov"}, "seasn": {"ignore": True}}
    settings = settings_for(
        tmp_path, {reg.model: {"chunkSize": 100, "drift": {"features": features}}}
    )
    with SqliteStore(settings.store.db_path) as store:
        fill(store, split, reg, 0, 200)
        analysis_pass(store, settings)()
        target = offline_target(store, "demo", policy_file=settings.operator.policy_file)
        [result] = Operator(store, target).reconcile_once()
    assert result.decision is not None
    unusable = next(c for c in result.decision.conditions if c.type == "PolicyUnusable")
    assert unusable.status == "True"
    assert (
        "spec.drift.features.origin.method: kolmogorov_smirnov does not apply" in unusable.message
    )
    assert "spec.drift.features.seasn: no such feature in the schema" in unusable.message


def test_the_plan_carries_the_drift_settings_and_an_invalid_spec_is_left_out() -> None:
    good = {
        "model": "m",
        "targetRef": {"name": "p"},
        "drift": {"features": {"a": {"ignore": True}}},
    }
    bad = {"model": "n", "targetRef": {"name": "q"}, "drift": {"features": {"a": {}}}}
    plans = chunk_plans([{"spec": good}, {"spec": bad}])
    assert set(plans) == {"m"}
    assert plans["m"].drift.ignored == frozenset({"a"})

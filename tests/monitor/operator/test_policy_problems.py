"""A policy that cannot work as written is a condition, an audit entry, a metric and a line in
`python -m monitor status` (offline operator on a real database; the spec from the policy
file), and so is a spec that does not parse."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.kube.offline import offline_target
from monitor.memory.state import ChunkingStatus, OperatorState
from monitor.metrics.registry import MonitorMetrics
from monitor.operator.reconciler import Operator
from monitor.store.sqlite import SqliteStore
from tests.support.kube import MODEL, chunk

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
runner = CliRunner()


def setup(tmp_path: Path, spec: dict[str, object]) -> tuple[Path, Path]:
    db, policy = tmp_path / "monitor.db", tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({MODEL: spec}))
    with SqliteStore(db) as store:
        store.register(
            {
                "model": MODEL,
                "version": "v1",
                "metrics": {"reference": {"roc_auc": 0.84}},
                "reference": [],
                "artifact": base64.b64encode(b"unused").decode(),
            }
        )
        for i in range(2):
            ev = replace(chunk("v1", i, known_good_version=None), rows=60)
            store.save_chunk(replace(ev, first_seq=i * 60 + 1, last_seq=i * 60 + 60))
        # What the analysis wrote after chunking v1 (60-row chunks, 20 rows waiting).
        waiting = ChunkingStatus("rows", 60, None, 60, 0.025, 1000, pending_rows=20, rows_needed=40)
        OperatorState(store).set_chunking(MODEL, "v1", waiting)
    return db, policy


def condition(metrics: MonitorMetrics, type_: str) -> float | None:
    labels = {"namespace": "demo", "modelmonitor": MODEL.replace("_", "-"), "type": type_}
    return metrics.registry.get_sample_value("modelguard_condition", labels)


def test_min_rows_above_the_chunk_size_shows_everywhere(tmp_path: Path) -> None:
    db, policy = setup(tmp_path, {"chunkSize": 60, "minRowsPerChunk": 300})
    metrics = MonitorMetrics()
    with SqliteStore(db) as store:
        target = offline_target(store, "demo", policy_file=policy)
        operator = Operator(store, target, clock=lambda: NOW, metrics=metrics)
        [result] = operator.reconcile_once()
        operator.reconcile_once()  # unchanged: reported once
        assert result.decision is not None
        status = {c["type"]: c for c in result.status["conditions"]}
        assert (status["PolicyUnusable"]["status"], status["PolicyUnusable"]["reason"]) == (
            "True",
            "MinRowsExceedChunkSize",
        )
        waiting = status["WaitingForData"]
        assert waiting["status"] == "True"  # no chunk is ever judged
        assert "20 rows wait for a chunk, 40 more needed" in waiting["message"]
        [entry] = store.audit(model=MODEL, kind="policy-unusable")
        assert entry["problems"][0][0] == "MinRowsExceedChunkSize"
        assert [e["reason"] for e in target.events].count("PolicyUnusable") == 1
    assert condition(metrics, "PolicyUnusable") == 1
    shown = runner.invoke(app, ["status", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "policy unusable" in shown.output and "MinRowsExceedChunkSize" in shown.output
    assert "rows waiting for a complete chunk" in shown.output


def test_fixing_the_policy_clears_the_condition_and_is_audited(tmp_path: Path) -> None:
    db, policy = setup(tmp_path, {"chunkSize": 60, "minRowsPerChunk": 300})
    metrics = MonitorMetrics()
    with SqliteStore(db) as store:
        operator = Operator(
            store, offline_target(store, "demo", policy_file=policy), lambda: NOW, metrics
        )
        operator.reconcile_once()
        policy.write_text(yaml.safe_dump({MODEL: {"chunkSize": 60}}))  # read on every pass
        [result] = operator.reconcile_once()
        status = {c["type"]: c for c in result.status["conditions"]}
        assert status["PolicyUnusable"]["status"] == "False"
        assert status["WaitingForData"]["status"] == "False"
        kinds = [e["kind"] for e in store.audit(model=MODEL) if e["kind"].startswith("policy")]
        assert kinds == ["policy-unusable", "policy-usable"]
    assert condition(metrics, "PolicyUnusable") == 0
    assert "policy unusable" not in runner.invoke(app, ["status", "--db", str(db)]).output


def test_an_invalid_spec_keeps_its_condition_metrics_and_is_audited(tmp_path: Path) -> None:
    db, policy = setup(tmp_path, {"chunkSize": 60})
    metrics = MonitorMetrics()
    with SqliteStore(db) as store:
        operator = Operator(
            store, offline_target(store, "demo", policy_file=policy), lambda: NOW, metrics
        )
        operator.reconcile_once()
        assert condition(metrics, "Ready") == 1
        policy.write_text(yaml.safe_dump({MODEL: {"chunkSize": 60, "chunkPeriod": "1d"}}))
        [result] = operator.reconcile_once()
        assert result.outcome == "invalid" and "spec.chunkPeriod" in (result.error or "")
        types = {c["type"]: c["status"] for c in result.status["conditions"]}
        assert types["Ready"] == "False" and types["PolicyUnusable"] == "True"
        assert "DriftDetected" in types  # the other conditions stay in the status
        [entry] = store.audit(model=MODEL, kind="policy-unusable")
        assert entry["problems"][0][0] == "InvalidSpec"
    assert (condition(metrics, "Ready"), condition(metrics, "PolicyUnusable")) == (0, 1)
    assert condition(metrics, "Degraded") is not None  # set before, never removed
    assert "InvalidSpec" in runner.invoke(app, ["status", "--db", str(db)]).output

"""Chunking as the ModelMonitor says, and small data protected by a declared known-good.

Real registrations (trained models), real SQLite files, the real analysis loop function
(`analysis_pass`, which reads the ModelMonitors: offline, from `MONITOR_POLICY_FILE`) and the
real offline operator; one test runs the whole monitor over HTTP.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml
from nannyml.sampling_error.binary_classification import auroc_sampling_error_components
from typer.testing import CliRunner

from bentos.training.data import Split
from monitor.cli import app
from monitor.core.settings import (
    AnalysisSettings,
    KubernetesSettings,
    MonitorSettings,
    OperatorSettings,
    StoreSettings,
)
from monitor.kube.offline import offline_target
from monitor.loops.background import analysis_pass
from monitor.memory.state import OperatorState
from monitor.metrics.registry import MonitorMetrics
from monitor.operator.reconciler import Operator
from monitor.store import Store
from monitor.store.sqlite import SqliteStore
from tests.support.monitor import RoleAuth, running_monitor
from tests.support.records import served

runner = CliRunner()


def settings_for(tmp_path: Path, policy: dict[str, Any] | None = None) -> MonitorSettings:
    """An offline monitor whose ModelMonitors come from a policy file (the one schema)."""
    policy_file = None
    if policy is not None:
        policy_file = tmp_path / "policy.yaml"
        policy_file.write_text(yaml.safe_dump(policy))
    return MonitorSettings(
        store=StoreSettings(db_path=tmp_path / "monitor.db"),
        kubernetes=KubernetesSettings(access="off", namespace="demo"),
        operator=OperatorSettings(policy_file=policy_file),
        analysis=AnalysisSettings(report_dir=tmp_path / "reports"),
    )


def fill(
    store: Store, split: Split, reg: Any, start: int, count: int, **over: Any
) -> list[dict[str, Any]]:
    store.register(reg)
    records, labels = served(split, reg, start, count, f"{reg.version}-{start}")
    records = [{**r, **over} for r in records]
    store.append_records(records)
    store.append_labels(labels)
    return records


def test_a_modelmonitors_chunk_size_changes_the_analysis(
    tmp_path: Path, split: Split, registrations: dict[str, Any]
) -> None:
    reg = registrations["good"]
    by_setting, by_spec = tmp_path / "setting", tmp_path / "spec"
    runs = [(by_setting, None), (by_spec, {reg.model: {"chunkSize": 100}})]
    for workdir, policy in runs:
        workdir.mkdir()
        settings = settings_for(workdir, policy)
        with SqliteStore(settings.store.db_path) as store:
            fill(store, split, reg, 0, 650)
            analysis_pass(store, settings)()
    with SqliteStore(by_setting / "monitor.db") as store:
        assert [c.rows for c in store.chunks(reg.model)] == [500]
        status = OperatorState(store).chunking(reg.model, reg.version)
        assert status is not None and (status.chunk_rows, status.pending_rows) == (500, 150)
    with SqliteStore(by_spec / "monitor.db") as store:
        assert [c.rows for c in store.chunks(reg.model)] == [100] * 6
        status = OperatorState(store).chunking(reg.model, reg.version)
        assert status is not None
        assert (status.chunk_rows, status.pending_rows, status.rows_needed) == (100, 50, 50)


def test_without_a_chunk_size_it_is_derived_from_the_references_sampling_error(
    tmp_path: Path, split: Split, registrations: dict[str, Any]
) -> None:
    reg = registrations["good"]
    bound = 0.05
    settings = settings_for(tmp_path, {reg.model: {"maxSamplingError": str(bound)}})
    reference = reg.reference_frame()
    std, fraction = auroc_sampling_error_components(
        reference[reg.schema.label.name].astype(int), reference["probability"].astype(float)
    )
    expected = int(np.ceil(float(std) ** 2 / (bound**2 * float(fraction))))
    assert 50 < expected < 1000  # a real size, not a clamp
    with SqliteStore(settings.store.db_path) as store:
        fill(store, split, reg, 0, 2 * expected + 7)
        analysis_pass(store, settings)()
        status = OperatorState(store).chunking(reg.model, reg.version)
        assert status is not None
        assert (status.mode, status.derived_rows, status.chunk_rows) == ("rows", expected, expected)
        assert [c.rows for c in store.chunks(reg.model)] == [expected, expected]
        assert status.pending_rows == 7


def test_chunks_by_period_follow_the_event_time_not_the_arrival(
    tmp_path: Path, split: Split, registrations: dict[str, Any]
) -> None:
    """A backfill received in one instant is chunked by the day its events happened: days
    from the model's first event, numbered 0, 1, ... with their date range."""
    reg = registrations["good"]
    settings = settings_for(tmp_path, {reg.model: {"chunkPeriod": "1d"}})
    with SqliteStore(settings.store.db_path) as store:
        records, labels = served(split, reg, 0, 24 * 4, "backfill")
        received = "2026-03-01T12:00:00+00:00"
        store.register(reg)
        store.append_records(
            [{**r, "event_time": r["timestamp"], "timestamp": received} for r in records]
        )
        store.append_labels(labels)
        analysis_pass(store, settings)()
        chunks = sorted(store.chunks(reg.model), key=lambda c: c.chunk_index)
        events = pd.Series(pd.to_datetime([r["timestamp"] for r in records], utc=True))
        first = events.min()
        per_day = ((events - first) // pd.Timedelta(days=1)).value_counts().sort_index()
        assert [c.chunk_index for c in chunks] == list(range(len(per_day)))
        assert [c.rows for c in chunks] == per_day.tolist()
        starts = [first + pd.Timedelta(days=int(d)) for d in per_day.index]
        assert [pd.Timestamp(c.period_start) for c in chunks] == starts
        assert [pd.Timestamp(c.period_end) for c in chunks] == [
            s + pd.Timedelta(days=1) for s in starts
        ]
        # Anchored at the first event, only the last day can be partial (the rows end).
        assert not any(c.partial for c in chunks[:-1])
        status = OperatorState(store).chunking(reg.model, reg.version)
        assert status is not None and (status.mode, status.period_seconds) == ("period", 86400)
        assert status.anchor is not None and status.first_period_start is not None
        assert pd.Timestamp(status.anchor) == first == pd.Timestamp(status.first_period_start)
        # Every row is in a chunk with its label; a second pass has nothing to redo.
        frame = store.records_frame(reg.model, reg.version)
        before = {c.chunk_index: c.labelled_rows for c in chunks}
        assert sum(before.values()) == len(frame)
        assert analysis_pass(store, settings)() == []


def test_a_declared_known_good_protects_the_first_release_of_a_small_model(
    tmp_path: Path, split: Split, registrations: dict[str, Any]
) -> None:
    """60-row chunks, a worse first release: without a known-good nothing can be undone
    (RollbackUnavailable NoKnownGood); once one is declared the release gate rejects it."""
    good, worse = registrations["good"], registrations["no-key-features"]
    model = good.model
    settings = settings_for(tmp_path, {model: {"chunkSize": 60}})
    with SqliteStore(settings.store.db_path) as store:
        store.register(good)
        fill(store, split, worse, 0, 180)
        analysis_pass(store, settings)()
        assert [c.rows for c in store.chunks(model, worse.version)] == [60, 60, 60]
        metrics = MonitorMetrics()
        target = offline_target(store, "demo", policy_file=settings.operator.policy_file)
        operator = Operator(store, target, metrics=metrics)
        [before] = operator.reconcile_once()
        assert before.decision is not None and before.decision.trigger is None
        conditions = {c.type: c for c in before.decision.conditions}
        assert (
            conditions["RollbackUnavailable"].status,
            conditions["RollbackUnavailable"].reason,
        ) == (
            "True",
            "NoKnownGood",
        )
        assert conditions["PolicyUnusable"].status == "False"  # 36 rows per chunk suffice
        assert conditions["WaitingForData"].status == "False"

    missing = runner.invoke(
        app, ["known-good", "set", model, "no-such-version", "--db", str(settings.store.db_path)]
    )
    assert missing.exit_code == 2 and "no-such-version" in missing.output
    declared = runner.invoke(
        app, ["known-good", "set", model, good.version, "--db", str(settings.store.db_path)]
    )
    assert declared.exit_code == 0, declared.output

    with SqliteStore(settings.store.db_path) as store:
        [entry] = store.audit(model=model, kind="known-good-declared")
        assert entry["version"] == good.version and entry["by"].startswith("cli:")
        operator = Operator(
            store, offline_target(store, "demo", policy_file=settings.operator.policy_file)
        )
        [after] = operator.reconcile_once()
        assert after.decision is not None
        assert (after.decision.trigger, after.outcome) == ("gate", "dry-run")
        assert (after.decision.from_version, after.decision.target_version) == (
            worse.version,
            good.version,
        )
        assert after.decision.target_revision == 1
        [rollback] = store.audit(model=model, kind="dry-run-rollback")
        assert rollback["toVersion"] == good.version


def test_the_monitor_chunks_posted_records_by_their_event_time(
    tmp_path: Path, split: Split, registrations: dict[str, Any]
) -> None:
    """Over HTTP: records carrying `event_time`, a ModelMonitor spec chunking by week."""
    reg = registrations["good"]
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({reg.model: {"chunkPeriod": "1w"}}))
    records, labels = served(split, reg, 0, 24 * 15, "weekly")
    posted = [
        {**r, "event_time": r["timestamp"], "timestamp": "2026-03-01T12:00:00Z"} for r in records
    ]
    env = {"MONITOR_POLICY_FILE": str(policy)}
    with (
        running_monitor(tmp_path / "mon", env=env, analysis_interval_seconds=1) as mon,
        httpx.Client(base_url=mon.url, timeout=60, auth=RoleAuth(mon)) as client,
    ):
        body = reg.model_dump(by_alias=True, mode="json")
        assert client.post("/v1/models", json=body, headers=mon.auth).status_code == 201
        assert client.post("/v1/records", json={"records": posted}).status_code == 202
        assert client.post("/v1/labels", json={"labels": labels}).status_code == 202
        events = pd.Series(pd.to_datetime([r["timestamp"] for r in records], utc=True))
        weeks = ((events - events.min()) // pd.Timedelta(weeks=1)).value_counts().sort_index()
        deadline = time.monotonic() + 180
        chunks: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(chunks) < len(weeks):
            chunks = client.get(f"/v1/models/{reg.model}/chunks").json()
            time.sleep(1)
        chunks.sort(key=lambda c: c["chunk_index"])
        assert [c["rows"] for c in chunks] == weeks.tolist(), mon.log()
        # Weeks from the model's first event, numbered from 0, each with its range.
        assert [c["chunk_index"] for c in chunks] == list(range(len(weeks)))
        assert [pd.Timestamp(c["period_start"]) for c in chunks] == [
            events.min() + pd.Timedelta(weeks=int(w)) for w in weeks.index
        ]
        exposition = client.get("/metrics").text
        assert (
            f'modelguard_chunk_rows_pending{{model="{reg.model}",version="{reg.version}"}} 0.0'
            in exposition
        )


def test_declaring_known_good_over_http_is_authenticated_and_audited(
    tmp_path: Path, registrations: dict[str, Any]
) -> None:
    reg = registrations["good"]
    with (
        running_monitor(tmp_path) as mon,
        httpx.Client(base_url=mon.url, timeout=60) as client,
    ):
        body = reg.model_dump(by_alias=True, mode="json")
        assert client.post("/v1/models", json=body, headers=mon.auth).status_code == 201
        path = f"/v1/models/{reg.model}/versions/{reg.version}/known-good"
        assert client.post(path).status_code == 401
        unknown = client.post(f"/v1/models/{reg.model}/versions/nope/known-good", headers=mon.auth)
        assert unknown.status_code == 404 and unknown.json()["errors"][0]["loc"] == "version"
        resp = client.post(path, headers=mon.auth)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"model": reg.model, "version": reg.version, "previous": None}
        audit = client.get("/v1/audit", params={"model": reg.model, "kind": "known-good-declared"})
        assert [(e["version"], e["by"]) for e in audit.json()] == [(reg.version, "api")]
    with SqliteStore(mon.db_path) as store:
        kg = OperatorState(store).known_good(reg.model)
        assert kg is not None and (kg.version, kg.declared_by) == (reg.version, "api")

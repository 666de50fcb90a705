"""`apply`, the one place a pass writes: over a real SQLite store, real metrics and a recording
target, what lands in the store, the audit log, Events, status and metrics, and in what order
around the Deployment patch (intent first; cleared only once reported; kept when it failed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.core.times import iso
from monitor.memory.audit import AuditEntry
from monitor.memory.state import (
    KnownGood,
    OperatorState,
    PendingRollback,
    PolicyReport,
    Rejection,
    RollbackPlan,
    RollbackRecord,
)
from monitor.metrics.registry import MonitorMetrics
from monitor.operator.apply import World, apply
from monitor.operator.effects import (
    Effects,
    NoteNotified,
    Reject,
    Rollback,
    SetCondition,
    SetKnownGood,
    SetPolicyReport,
)
from monitor.operator.ports import EventNote
from monitor.operator.resource import ModelMonitor
from monitor.store.sqlite import SqliteStore
from tests.monitor.operator.fakes import NOW, PATCH, RecordingTarget

MODEL = "rain_forecast"
MONITOR = ModelMonitor("rain", "ml", uid="u-1", generation=2)
PENDING_KEY = "pending_rollback/ml/rain"
RECORD = RollbackRecord(2, 1, "bad", "good", "parity", "parity 0.30 > 0.10", iso(NOW))
PLAN = RollbackPlan("ml", "predictor", 1, "good", "bad", "modelguard: rollback bad -> good")
PENDING = PendingRollback(PLAN, RECORD, RECORD.release, "auto", MODEL)
# The keys a rollback's audit entry was always stored with (readers filter on them).
ROLLBACK_KEYS = {
    "id", "at", "time", "kind", "model", "namespace", "modelmonitor", "mode", "patch",
    "message", "from", "to", "fromVersion", "toVersion", "trigger", "reason", "dryRun",
}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "monitor.db") as opened:
        yield opened


def rollback(resumed: bool = False) -> Rollback:
    return Rollback(PENDING, MODEL, "auto", "predictor", NOW, resumed=resumed)


def rollbacks_counted(metrics: MonitorMetrics) -> float | None:
    labels = {"namespace": "ml", "modelmonitor": "rain", "trigger": "parity", "mode": "auto"}
    return metrics.registry.get_sample_value("modelguard_rollbacks_total", labels)


def test_every_kind_of_effect_lands_where_it_belongs(store: SqliteStore) -> None:
    target, metrics = RecordingTarget(), MonitorMetrics()
    entry = AuditEntry(
        "known-good", MODEL, namespace="ml", modelmonitor="rain", time=iso(NOW), details={"to": 1}
    )
    effects = Effects(
        writes=(
            SetKnownGood(MODEL, KnownGood("good", 1, iso(NOW))),
            Reject(MODEL, "bad", Rejection("gate", iso(NOW))),
            Reject(MODEL, "bad", Rejection("later", iso(NOW))),
            NoteNotified("ml", "rain", "rollback-unavailable", "rollback-unavailable:bad@2"),
            SetPolicyReport(MODEL, PolicyReport("ml", "rain", (("X", "why"),))),
        ),
        audit=(entry,),
        events=(EventNote("KnownGood", "promoted", NOW, "good@1"),),
        status={"observedGeneration": 2},
        metrics=(SetCondition("ml", "rain", "Ready", True),),
    )

    applied = apply(World(store, target, metrics), MONITOR, effects)

    assert (applied.outcome, applied.patch) == (None, [])
    state = OperatorState(store)
    assert store.get_state(f"known_good/{MODEL}") == {
        "version": "good",
        "revision": 1,
        "since": "2026-03-01T12:00:00Z",
    }
    assert state.rejections(MODEL) == {"bad": Rejection("gate", iso(NOW))}  # the first kept
    assert state.incident("ml", "rain").notified == {
        "rollback-unavailable": "rollback-unavailable:bad@2"
    }
    assert state.policy_report(MODEL) == PolicyReport("ml", "rain", (("X", "why"),))
    [stored] = store.audit(model=MODEL)
    assert {k: v for k, v in stored.items() if k not in ("id", "at")} == {
        "time": "2026-03-01T12:00:00Z",
        "kind": "known-good",
        "model": MODEL,
        "namespace": "ml",
        "modelmonitor": "rain",
        "to": 1,
    }
    [event] = target.events
    assert (event["reason"], event["type"], event["message"]) == ("KnownGood", "Normal", "promoted")
    assert target.statuses == [{"observedGeneration": 2}]
    labels = {"namespace": "ml", "modelmonitor": "rain", "type": "Ready"}
    assert metrics.registry.get_sample_value("modelguard_condition", labels) == 1
    assert target.rollbacks == []


def test_the_intent_is_stored_before_the_patch_and_cleared_once_reported(
    store: SqliteStore,
) -> None:
    at_patch: list[Any] = []
    target = RecordingTarget("patched", on_rollback=lambda _: at_patch.append(
        (store.get_state(PENDING_KEY), store.audit(model=MODEL))
    ))  # fmt: skip
    metrics = MonitorMetrics()

    applied = apply(World(store, target, metrics), MONITOR, Effects(rollback=rollback()))

    assert (applied.outcome, applied.patch) == ("patched", PATCH)
    assert at_patch == [(PENDING.to_json(), [])]  # intent written, nothing reported yet
    assert store.get_state(PENDING_KEY) == {}
    incident = OperatorState(store).incident("ml", "rain")
    assert (incident.handled_release, incident.last_rollback) == ("bad@2", RECORD)
    [entry] = store.audit(model=MODEL, kind="rollback")
    assert set(entry) == ROLLBACK_KEYS
    assert (entry["patch"], entry["mode"], entry["from"], entry["to"]) == (PATCH, "auto", 2, 1)
    assert entry["message"] == (
        "rolled back predictor from revision 2 (bad) to revision 1 (good): parity 0.30 > 0.10"
    )
    [event] = target.events
    assert (event["reason"], event["type"], event["message"]) == (
        "RolledBack",
        "Warning",
        entry["message"],
    )
    assert rollbacks_counted(metrics) == 1


def test_a_failed_patch_keeps_the_intent_and_says_nothing(store: SqliteStore) -> None:
    target = RecordingTarget("failed")
    applied = apply(World(store, target, None), MONITOR, Effects(rollback=rollback()))
    assert applied.outcome == "failed"
    assert store.get_state(PENDING_KEY) == PENDING.to_json()
    assert (store.audit(model=MODEL), target.events) == ([], [])
    assert OperatorState(store).incident("ml", "rain").handled_release is None


@pytest.mark.parametrize("outcome", ["superseded", "missing"])
def test_a_deployment_changed_by_someone_else_is_audited_not_fought(
    store: SqliteStore, outcome: Any
) -> None:
    target = RecordingTarget(outcome)
    apply(World(store, target, None), MONITOR, Effects(rollback=rollback()))
    assert store.get_state(PENDING_KEY) == {}
    [entry] = store.audit(model=MODEL)
    assert entry["kind"] == f"rollback-{outcome}"
    assert set(entry) == ROLLBACK_KEYS - {"mode", "patch", "message"}
    assert target.events == []
    assert OperatorState(store).incident("ml", "rain").last_rollback is None


def test_a_restart_at_the_patch_resumes_it_without_a_second_rollback(store: SqliteStore) -> None:
    def die(_: RollbackPlan) -> None:
        raise KeyboardInterrupt("monitor killed")

    with pytest.raises(KeyboardInterrupt):
        apply(World(store, RecordingTarget(on_rollback=die), None), MONITOR, rollback_effects())
    stored = OperatorState(store).pending("ml", "rain")
    assert stored == PENDING

    # The restarted monitor resumes the stored intent; the patch had landed: "already".
    seen: list[Any] = []
    target = RecordingTarget("already", on_rollback=lambda _: seen.append(store.audit()))
    resumed = Rollback(stored, MODEL, "auto", "predictor", NOW, resumed=True)
    applied = apply(World(store, target, None), MONITOR, Effects(rollback=resumed))

    assert applied.outcome == "already"
    assert seen == [[]]
    assert len(store.audit(model=MODEL, kind="rollback")) == 1
    assert [e["reason"] for e in target.events] == ["RolledBack"]
    assert store.get_state(PENDING_KEY) == {}


def rollback_effects() -> Effects:
    return Effects(rollback=rollback())


class BrokenMetrics(MonitorMetrics):
    def set_condition(self, namespace: str, modelmonitor: str, type_: str, status: bool) -> None:
        raise RuntimeError("registry gone")


def test_metrics_never_break_a_pass(store: SqliteStore) -> None:
    target = RecordingTarget()
    effects = Effects(
        status={"observedGeneration": 2}, metrics=(SetCondition("ml", "rain", "Ready", True),)
    )
    apply(World(store, target, BrokenMetrics()), MONITOR, effects)
    assert target.statuses == [{"observedGeneration": 2}]

"""What `publish.py` words, applied over a real SQLite store: status patches, audit entries
(the keys they were always stored with), Events, and that each thing is said once."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.core.gap import GapSummary
from monitor.core.times import iso
from monitor.decision.candidates import CandidateVerdict
from monitor.decision.policy import Policy, parse_policy
from monitor.decision.types import Condition, Decision
from monitor.kube.offline import offline_target
from monitor.memory.candidates import CandidateState
from monitor.memory.state import (
    KnownGood,
    OperatorState,
    PolicyReport,
    Rejection,
    RollbackRecord,
)
from monitor.metrics.registry import MonitorMetrics
from monitor.operator import publish
from monitor.operator.apply import World, apply
from monitor.operator.effects import Effects, NoteRollback
from monitor.operator.reconciler import Operator
from monitor.operator.resource import ModelMonitor
from monitor.store.sqlite import SqliteStore
from tests.monitor.operator.fakes import NOW, RecordingTarget

MODEL = "rain_forecast"
PREVIOUS = {
    "type": "Degraded",
    "status": "False",
    "reason": "Healthy",
    "message": "",
    "lastTransitionTime": "2026-02-01T00:00:00Z",
}
MONITOR = ModelMonitor(
    "rain",
    "ml",
    uid="u-1",
    generation=4,
    spec={"model": MODEL},
    status={"conditions": [PREVIOUS]},
)
POLICY: Policy = parse_policy(
    {"model": MODEL, "mode": "auto", "targetRef": {"kind": "Deployment", "name": "predictor"}}
)
DECISION = Decision(
    action="unavailable",
    effect="none",
    message="no known-good revision to go back to",
    conditions=(Condition("Degraded", "True", "ScoreParity", "parity 0.30"),),
    trigger="parity",
    from_version="bad",
    from_revision=2,
    last_estimate={"chunk": 3, "estimated_roc_auc": 0.71234},
)
NO_GAP = GapSummary(None, None, None, 0, 0, None, 0.9)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with SqliteStore(tmp_path / "monitor.db") as store:
        yield World(store, RecordingTarget(), MonitorMetrics())


def target_of(world: World) -> RecordingTarget:
    assert isinstance(world.target, RecordingTarget)
    return world.target


def audit(world: World) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k not in ("id", "at")} for e in world.store.audit()]


def test_a_notification_is_audited_and_posted_once_per_release(world: World) -> None:
    state = OperatorState(world.store)
    for _ in range(2):
        incident = state.incident("ml", "rain")
        effects = publish.notify_once(
            MONITOR,
            POLICY,
            DECISION,
            NOW,
            incident,
            "RollbackUnavailable",
            "rollback-unavailable",
        )
        apply(world, MONITOR, effects)
    assert audit(world) == [
        {
            "time": "2026-03-01T12:00:00Z",
            "kind": "rollback-unavailable",
            "model": MODEL,
            "namespace": "ml",
            "modelmonitor": "rain",
            "mode": "auto",
            "fromVersion": "bad",
            "from": 2,
            "toVersion": None,
            "to": None,
            "trigger": "parity",
            "reason": DECISION.message,
        }
    ]
    [event] = target_of(world).events
    assert (event["reason"], event["type"]) == ("RollbackUnavailable", "Warning")


def test_the_status_reports_the_state_as_stored_after_the_pass(world: World) -> None:
    state = OperatorState(world.store)
    state.set_known_good(MODEL, KnownGood("good", 1, iso(NOW)))
    state.reject(MODEL, "bad", Rejection("gate"))
    record = RollbackRecord(2, 1, "bad", "good", "parity", "parity 0.30", iso(NOW))
    apply(world, MONITOR, Effects(writes=(NoteRollback("ml", "rain", record),)))
    rollback = Decision(
        action="rollback",
        effect="patch",
        message="m",
        conditions=DECISION.conditions,
        trigger="parity",
        from_version="bad",
        from_revision=2,
        target_version="good",
        target_revision=1,
        last_estimate=DECISION.last_estimate,
    )

    body = publish.status(MONITOR, POLICY, state, None, rollback, NOW, patched="patched")

    assert body == {
        "observedGeneration": 4,
        "conditions": [
            {
                "type": "Degraded",
                "status": "True",
                "reason": "ScoreParity",
                "message": "parity 0.30",
                "lastTransitionTime": "2026-03-01T12:00:00Z",
                "observedGeneration": 4,
            },
            {
                "type": "CandidateEvaluated",
                "status": "False",
                "reason": "NoCandidates",
                "message": "no candidate declared",
                "lastTransitionTime": "2026-03-01T12:00:00Z",
                "observedGeneration": 4,
            },
        ],
        "currentRevision": 1,
        "currentVersion": "good",
        "knownGoodRevision": 1,
        "knownGoodVersion": "good",
        "rejectedVersions": ["bad"],
        "lastEstimate": {"chunk": 3, "estimated_roc_auc": "0.7123"},
        "lastRollback": record.to_json(),
    }


def test_deployment_not_found_is_ready_false_and_nothing_else(world: World) -> None:
    state = OperatorState(world.store)
    body = publish.status(MONITOR, POLICY, state, None, None, NOW, not_found="gone")
    assert body["observedGeneration"] == 4
    [ready] = body["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == (
        "Ready",
        "False",
        "DeploymentNotFound",
    )


def test_an_invalid_spec_is_reported_once_and_keeps_the_other_conditions(world: World) -> None:
    state = OperatorState(world.store)
    for _ in range(2):
        apply(world, MONITOR, publish.invalid(MONITOR, "spec.targetRef: required", NOW, state))
    target = target_of(world)
    status = target.statuses[-1]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Ready", "False", "InvalidSpec"),
        ("PolicyUnusable", "True", "InvalidSpec"),
        ("Degraded", "False", "Healthy"),
    ]
    assert status["conditions"][2]["lastTransitionTime"] == PREVIOUS["lastTransitionTime"]
    assert audit(world) == [
        {
            "time": "2026-03-01T12:00:00Z",
            "kind": "policy-unusable",
            "model": MODEL,
            "namespace": "ml",
            "modelmonitor": "rain",
            "problems": [["InvalidSpec", "spec.targetRef: required"]],
            "message": "InvalidSpec: spec.targetRef: required",
        }
    ]
    assert state.policy_report(MODEL) == PolicyReport(
        "ml", "rain", (("InvalidSpec", "spec.targetRef: required"),)
    )
    # Posted on both passes, under one name: the API server keeps one Event.
    assert [e["reason"] for e in target.events] == ["InvalidSpec", "InvalidSpec"]
    assert len({e["metadata"]["name"] for e in target.events}) == 1
    assert isinstance(world.metrics, MonitorMetrics)
    labels = {"namespace": "ml", "modelmonitor": "rain", "type": "PolicyUnusable"}
    assert world.metrics.registry.get_sample_value("modelguard_condition", labels) == 1


def verdict(version: str, verdict: Any) -> CandidateVerdict:
    return CandidateVerdict(version, verdict, "Reason", "msg", "good", NO_GAP, NO_GAP)


def test_a_verdict_is_announced_when_it_changes_and_only_then(world: World) -> None:
    passes = [
        {"v2": verdict("v2", "Inconclusive")},
        {"v2": verdict("v2", "Inconclusive")},
        {"v2": verdict("v2", "Worse")},
    ]
    for verdicts in passes:
        before = CandidateState(world.store).verdicts(MODEL)
        apply(world, MONITOR, publish.candidates(MONITOR, POLICY, verdicts, before, NOW))
    entries = audit(world)
    assert [e["verdict"] for e in entries] == ["Inconclusive", "Worse"]
    assert set(entries[1]) == {
        "time", "kind", "model", "namespace", "modelmonitor", *verdict("v2", "Worse").to_json()
    }  # fmt: skip
    [event] = target_of(world).events  # an Inconclusive verdict is audited, never posted
    assert (event["reason"], event["type"]) == ("CandidateWorse", "Warning")
    assert CandidateState(world.store).verdicts(MODEL) == {"v2": verdict("v2", "Worse").to_json()}


def test_spec_known_good_is_declared_once_with_the_keys_it_always_had(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({MODEL: {"knownGood": "v1"}}))
    with SqliteStore(tmp_path / "monitor.db") as store:
        for version in ("v1", "v2"):
            store.register(
                {
                    "model": MODEL,
                    "version": version,
                    "metrics": {"reference": {"roc_auc": 0.84}},
                    "reference": [],
                    "artifact": base64.b64encode(b"unused").decode(),
                }
            )
        operator = Operator(store, offline_target(store, "demo", policy_file=policy), lambda: NOW)
        operator.reconcile_once()
        operator.reconcile_once()
        [entry] = store.audit(model=MODEL, kind="known-good-declared")
    assert {k: v for k, v in entry.items() if k not in ("id", "at")} == {
        "time": "2026-03-01T12:00:00Z",
        "kind": "known-good-declared",
        "model": MODEL,
        "version": "v1",
        "revision": 1,
        "by": "spec",
        "namespace": "demo",
        "modelmonitor": "rain-forecast",
    }

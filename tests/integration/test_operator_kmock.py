"""The operator against a Kubernetes API over real HTTP: kmock's emulator on loopback, the
official `kubernetes` client, a real SQLite store; evidence is constructed ChunkEvidence.

kmock gaps these tests rely on (docs/design.md): it has no Deployment controller, so
`simulate_controller` renumbers ReplicaSets as the controller would after a rollout; label
selectors are ignored, so the operator's own ownerReferences filter is what selects the
ReplicaSets; it keeps no resourceVersion and applies JSON patches without answering 422 on a
failed `test`, so `ModelguardEmulator` adds both (a real API server does the same).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.core.evidence import ChunkEvidence
from monitor.kube.rollout import CHANGE_CAUSE, REVISION_ANNOTATION, RollbackPlan
from monitor.kube.target import KubeTarget, Retry
from monitor.operator.reconciler import Operator, ReconcileResult
from monitor.service.rejections import clear_rejection
from monitor.store import Store
from monitor.store.sqlite import SqliteStore
from tests.support.kube import (
    DEPLOYMENTS,
    EVENTS,
    MODEL,
    MODELMONITORS,
    REPLICASETS,
    Fault,
    KubeEmulator,
    chunk,
    create_deployment,
    create_modelmonitor,
    deploy,
    kube_emulator,
    simulate_controller,
)

NS, DEP, MM = "ml", "predictor", "rain"
GOOD, BAD, RETRAIN = "good-aaaa", "bad-bbbb", "retrain-cccc"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Cluster:
    kube: KubeEmulator
    store: Store
    clock: Clock
    db: Path

    def operator(self, **retry: Any) -> Operator:
        settings = {"base_seconds": 0.01, "timeout_seconds": 2.0, **retry}
        target = KubeTarget(self.kube.api_client(), namespace=NS, retry=Retry(**settings))
        return Operator(self.store, target, clock=self.clock, metrics=None)

    def evidence(self, chunks: list[ChunkEvidence]) -> None:
        for c in chunks:
            self.store.save_chunk(replace(c, analysed_at=self.clock.now.isoformat()))

    def deployment(self) -> dict[str, Any]:
        return self.kube.get(DEPLOYMENTS, NS, DEP)

    def live_version(self) -> str:
        annotations = self.deployment()["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["modelguard.dev/model-version"])

    def monitor(self) -> dict[str, Any]:
        return self.kube.get(MODELMONITORS, NS, MM)

    def condition(self, kind: str) -> tuple[str, str]:
        conds = self.monitor()["status"]["conditions"]
        found = next(c for c in conds if c["type"] == kind)
        return found["status"], found["reason"]

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [e for e in self.kube.list_objects(EVENTS, NS) if e["reason"] == reason]

    def rollbacks_applied(self) -> int:
        """How many times the Deployment's template went from another version to GOOD."""
        versions = self.kube.history(NS, DEP)
        return sum(1 for a, b in itertools.pairwise(versions) if a != b and b == GOOD)


def register(store: Store, version: str, roc_auc: float, learner: str = "xgboost") -> None:
    """A registration whose hold-out ROC AUC, as the monitor computed it at registration
    (`monitor_holdout`: the release gate reads that, never the registration's `metrics`)."""
    store.register(
        {
            "model": MODEL,
            "version": version,
            "learner": learner,
            "metrics": {"reference": {"roc_auc": 0.99}},  # self-declared: decides nothing
            "reference": [],
            "artifact": base64.b64encode(b"not-used-here").decode(),
        },
        holdout={"roc_auc": roc_auc},
    )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Revision 1 = GOOD (known-good), revision 2 = BAD now live, a ModelMonitor in auto."""
    with kube_emulator() as kube:
        db = tmp_path / "monitor.db"
        store = SqliteStore(db)
        try:
            register(store, GOOD, 0.845)
            register(store, BAD, 0.840)
            register(store, RETRAIN, 0.846)
            create_deployment(kube, NS, DEP, [GOOD, BAD])
            store.put_state(
                f"known_good/{MODEL}",
                {"version": GOOD, "revision": 1, "since": "2026-02-01T00:00:00Z"},
            )
            create_modelmonitor(
                kube,
                NS,
                MM,
                {"model": MODEL, "mode": "auto", "targetRef": {"kind": "Deployment", "name": DEP}},
            )
            yield Cluster(kube, store, Clock(), db)
        finally:
            store.close()


TRIGGERS: dict[str, tuple[dict[str, float], list[ChunkEvidence], str, str]] = {
    "gate": ({"roc_auc": 0.70}, [], "ReleaseGate", "holdout_roc_auc_shortfall"),
    "parity": (
        {},
        [chunk(BAD, 0, known_good_version=GOOD, parity=0.3)],
        "ScoreParity",
        "score_parity_violation_ratio",
    ),
    "rank_correlation": (
        {},
        [chunk(BAD, i, known_good_version=GOOD, rank=0.5) for i in range(3)],
        "RankCorrelation",
        "rank_correlation",
    ),
    "estimated_gap": (
        {},
        [chunk(BAD, i, known_good_version=GOOD, estimated=0.72) for i in range(2)],
        "EstimatedGap",
        "cumulative_estimated_roc_auc_gap",
    ),
    "realized_gap": (
        {},
        [
            chunk(
                BAD,
                i,
                known_good_version=GOOD,
                realized=0.6,
                known_good_realized=0.8,
                labelled_rows=400,
            )
            for i in range(2)
        ],
        "RealizedGap",
        "cumulative_realized_roc_auc_gap",
    ),
}


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_bad_release_is_rolled_back_to_the_known_good_revision(
    cluster: Cluster, trigger: str
) -> None:
    holdout, chunks, reason, metric = TRIGGERS[trigger]
    if holdout:
        cluster.store.put_state("unused", {})
        register(cluster.store, "bad-gated", holdout["roc_auc"])
        deploy(cluster.kube, NS, DEP, "bad-gated")
        from_version, from_revision = "bad-gated", 3
    else:
        from_version, from_revision = BAD, 2
    cluster.evidence(chunks)

    [result] = cluster.operator().reconcile_once()

    assert (result.outcome, result.error) == ("patched", None)
    dep = cluster.deployment()
    assert cluster.live_version() == GOOD
    good_rs = next(
        rs
        for rs in cluster.kube.list_objects(REPLICASETS, NS)
        if rs["metadata"]["annotations"][REVISION_ANNOTATION] == "1"
    )
    assert "pod-template-hash" in good_rs["spec"]["template"]["metadata"]["labels"]
    assert "pod-template-hash" not in dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["template"]["spec"] == good_rs["spec"]["template"]["spec"]
    assert f"{from_version} -> {GOOD}" in dep["metadata"]["annotations"][CHANGE_CAUSE]
    # The controller renumbers the restored ReplicaSet: that is the new live revision.
    assert simulate_controller(cluster.kube, NS, DEP) == from_revision + 1

    [event] = cluster.events("RolledBack")
    assert event["type"] == "Warning" and event["involvedObject"]["name"] == MM
    for part in (metric, from_version, GOOD, f"revision {from_revision}", "revision 1"):
        assert part in event["message"]
    status = cluster.monitor()["status"]
    assert cluster.condition("RolledBack") == ("True", reason)
    assert status["lastRollback"]["trigger"] == trigger
    assert (status["lastRollback"]["from"], status["lastRollback"]["to"]) == (from_revision, 1)
    assert (status["currentVersion"], status["knownGoodVersion"]) == (GOOD, GOOD)
    assert status["rejectedVersions"] == [from_version]
    assert status["observedGeneration"] == 1
    [audit] = cluster.store.audit(model=MODEL, kind="rollback")
    assert (audit["trigger"], audit["fromVersion"], audit["toVersion"]) == (
        trigger,
        from_version,
        GOOD,
    )
    assert any(op["op"] == "test" for op in audit["patch"])
    if trigger == "gate":
        assert len(cluster.events("ReleaseRejected")) == 1

    # Level-triggered and idempotent: more passes change nothing.
    for _ in range(2):
        [again] = cluster.operator().reconcile_once()
        assert again.outcome == "none"
    assert cluster.kube.patches() == 1
    assert len(cluster.events("RolledBack")) == 1
    assert cluster.condition("RolledBack") == ("True", reason)


@pytest.mark.parametrize(("version", "gap"), [(BAD, -0.002), (RETRAIN, 0.004)])
def test_good_release_and_equivalent_retrain_under_world_drift_are_kept(
    cluster: Cluster, version: str, gap: float
) -> None:
    if version != BAD:
        deploy(cluster.kube, NS, DEP, version)
    drifting = [
        chunk(
            version,
            i,
            known_good_version=GOOD,
            estimated=0.64 + gap,
            known_good_estimated=0.64,
            drifted=("temp", "dewp", "humid"),
        )
        for i in range(6)
    ]
    cluster.evidence(drifting[:3])
    [result] = cluster.operator().reconcile_once()
    assert result.outcome == "none"
    assert cluster.condition("Ready") == ("True", "OnProbation")
    assert cluster.condition("DriftDetected") == ("True", "FeatureDrift")
    assert cluster.condition("Degraded") == ("True", "EstimateBelowBound")
    cluster.evidence(drifting[3:])
    cluster.operator().reconcile_once()
    assert cluster.kube.patches() == 0
    assert cluster.live_version() == version
    assert cluster.monitor()["status"]["knownGoodVersion"] == version
    assert len(cluster.events("KnownGood")) == 1
    assert cluster.store.get_state(f"known_good/{MODEL}")["version"] == version  # type: ignore[index]


def test_dry_run_patches_nothing_and_says_what_it_would_do(cluster: Cluster) -> None:
    mm = cluster.monitor()
    mm["spec"]["mode"] = "dryRun"
    cluster.kube.put(MODELMONITORS, NS, MM, mm)
    cluster.evidence([chunk(BAD, 0, known_good_version=GOOD, parity=0.3)])
    for _ in range(2):
        cluster.operator().reconcile_once()
    assert cluster.kube.patches() == 0
    assert cluster.live_version() == BAD
    [event] = cluster.events("RollbackDryRun")
    assert "would roll back" in event["message"] and "revision 1" in event["message"]
    [audit] = cluster.store.audit(model=MODEL, kind="dry-run-rollback")
    assert any(op["op"] == "replace" and op["path"] == "/spec/template" for op in audit["patch"])
    assert cluster.condition("RolledBack") == ("False", "DryRun")
    assert cluster.monitor()["status"]["lastRollback"]["dryRun"] is True
    # Switching to auto then acts on the same release (a dry run is not an incident handled).
    mm = cluster.monitor()
    mm["spec"]["mode"] = "auto"
    cluster.kube.put(MODELMONITORS, NS, MM, mm)
    [result] = cluster.operator().reconcile_once()
    assert result.outcome == "patched" and cluster.live_version() == GOOD


def test_cooldown_holds_a_second_bad_release_then_lets_it_go(cluster: Cluster) -> None:
    cluster.evidence([chunk(BAD, 0, known_good_version=GOOD, parity=0.3)])
    cluster.operator().reconcile_once()
    simulate_controller(cluster.kube, NS, DEP)
    register(cluster.store, "worse-dddd", 0.845)
    deploy(cluster.kube, NS, DEP, "worse-dddd")
    cluster.evidence([chunk("worse-dddd", 0, known_good_version=GOOD, parity=0.5)])
    cluster.clock.now = T0 + timedelta(minutes=10)
    [held] = cluster.operator().reconcile_once()
    assert held.decision is not None and (held.decision.deferred or "").startswith("Cooldown")
    assert cluster.live_version() == "worse-dddd"
    cluster.clock.now = T0 + timedelta(minutes=31)
    [acted] = cluster.operator().reconcile_once()
    assert acted.outcome == "patched" and cluster.live_version() == GOOD
    assert cluster.rollbacks_applied() == 2


def test_one_rollback_per_incident_even_if_the_rollback_is_reverted(cluster: Cluster) -> None:
    cluster.evidence([chunk(BAD, 0, known_good_version=GOOD, parity=0.3)])
    cluster.operator().reconcile_once()
    # Someone puts the bad template back before the controller saw the rollback: for the
    # cluster this is still revision 2, the same release; the operator does not fight it.
    dep = cluster.deployment()
    bad_rs = next(
        rs
        for rs in cluster.kube.list_objects(REPLICASETS, NS)
        if rs["metadata"]["annotations"][REVISION_ANNOTATION] == "2"
    )
    dep["spec"]["template"] = bad_rs["spec"]["template"]
    cluster.kube.put(DEPLOYMENTS, NS, DEP, dep)
    cluster.clock.now = T0 + timedelta(hours=2)  # past the cooldown: only the incident guard
    [result] = cluster.operator().reconcile_once()
    assert result.decision is not None
    assert (result.decision.deferred or "").startswith("IncidentAlreadyHandled")
    assert cluster.live_version() == BAD
    assert cluster.kube.patches() == 1


@pytest.mark.parametrize(
    "faults",
    [
        [Fault("deployments", status=409)],
        [Fault("deployments", status=500), Fault("deployments", status=500)],
        [Fault("deployments", delay_seconds=1.5)],  # applied, but the reply is lost to a timeout
        [Fault("deployments", status=409), Fault("deployments", delay_seconds=1.5)],
    ],
    ids=["409", "500x2", "timeout", "409+timeout"],
)
def test_patch_failures_are_retried_without_a_double_rollback(
    cluster: Cluster, faults: list[Fault]
) -> None:
    cluster.kube.emulator.faults.extend(faults)
    cluster.evidence([chunk(BAD, 0, known_good_version=GOOD, parity=0.3)])
    [result] = cluster.operator(timeout_seconds=0.5).reconcile_once()
    assert (result.outcome, result.error) == ("patched", None)
    assert cluster.kube.emulator.faults == []
    assert cluster.live_version() == GOOD
    assert cluster.rollbacks_applied() == 1
    assert len(cluster.store.audit(model=MODEL, kind="rollback")) == 1
    assert len(cluster.events("RolledBack")) == 1
    assert cluster.store.get_state(f"pending_rollback/{NS}/{MM}") == {}


class CrashingTarget(KubeTarget):
    """The monitor process dies around the patch (before it, or after it landed)."""

    def __init__(self, *args: Any, after_patch: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.after_patch = after_patch

    def rollback(self, plan: RollbackPlan) -> Any:
        if self.after_patch:
            super().rollback(plan)
        raise KeyboardInterrupt("monitor killed")  # not an Exception: nothing catches it


@pytest.mark.parametrize("after_patch", [False, True], ids=["before-patch", "after-patch"])
def test_restart_between_decision_and_patch_makes_exactly_one_rollback(
    cluster: Cluster, after_patch: bool
) -> None:
    cluster.evidence([chunk(BAD, 0, known_good_version=GOOD, parity=0.3)])
    crashing = CrashingTarget(
        cluster.kube.api_client(),
        namespace=NS,
        retry=Retry(base_seconds=0.01),
        after_patch=after_patch,
    )
    with pytest.raises(KeyboardInterrupt):
        Operator(cluster.store, crashing, clock=cluster.clock, metrics=None).reconcile_once()
    assert cluster.store.get_state(f"pending_rollback/{NS}/{MM}")  # the intent survived
    cluster.store.close()
    cluster.store = SqliteStore(cluster.db)  # a new process opens the same database
    results: list[ReconcileResult] = cluster.operator().reconcile_once()
    assert results[0].outcome == ("already" if after_patch else "patched")
    cluster.operator().reconcile_once()
    assert cluster.live_version() == GOOD
    assert cluster.rollbacks_applied() == 1
    assert cluster.kube.patches() == 1
    assert len(cluster.store.audit(model=MODEL, kind="rollback")) == 1
    assert len(cluster.events("RolledBack")) == 1


def test_rejected_version_redeployed_is_rolled_back_until_cleared(cluster: Cluster) -> None:
    cluster.evidence([chunk(BAD, 0, known_good_version=GOOD, parity=0.3)])
    cluster.operator().reconcile_once()
    simulate_controller(cluster.kube, NS, DEP)
    cluster.clock.now = T0 + timedelta(minutes=5)  # inside the cooldown: rejection ignores it
    deploy(cluster.kube, NS, DEP, BAD)  # helm upgrade re-applies the rejected version
    [again] = cluster.operator().reconcile_once()
    assert (again.outcome, again.decision and again.decision.trigger) == ("patched", "rejected")
    assert cluster.live_version() == GOOD
    assert cluster.rollbacks_applied() == 2
    simulate_controller(cluster.kube, NS, DEP)
    # The operator clears the rejection (API/CLI); the version is judged afresh from then on.
    assert clear_rejection(cluster.store, MODEL, BAD, "test")
    cluster.clock.now = T0 + timedelta(hours=1)
    deploy(cluster.kube, NS, DEP, BAD)
    [kept] = cluster.operator().reconcile_once()
    assert kept.outcome == "none" and cluster.live_version() == BAD
    assert cluster.condition("Ready") == ("True", "OnProbation")


def test_bad_spec_is_reported_not_acted_on(cluster: Cluster) -> None:
    mm = cluster.monitor()
    mm["spec"]["rollbackRules"] = {"estimatedGap": {"min": "0.5"}}
    cluster.kube.put(MODELMONITORS, NS, MM, mm)
    cluster.evidence([chunk(BAD, 0, known_good_version=GOOD, parity=0.3)])
    [result] = cluster.operator().reconcile_once()
    assert result.outcome == "invalid" and "spec.rollbackRules.estimatedGap.min" in str(
        result.error
    )
    assert cluster.condition("Ready") == ("False", "InvalidSpec")
    assert cluster.kube.patches() == 0


def test_missing_known_good_revision_is_rollback_unavailable(cluster: Cluster) -> None:
    cluster.store.put_state(f"known_good/{MODEL}", {"version": "gone-eeee", "revision": 1})
    cluster.evidence([chunk(BAD, 0, known_good_version="gone-eeee", parity=0.3)])
    for _ in range(2):
        [result] = cluster.operator().reconcile_once()
        assert result.decision is not None and result.decision.action == "unavailable"
    assert cluster.condition("RollbackUnavailable") == ("True", "KnownGoodRevisionMissing")
    assert len(cluster.events("RollbackUnavailable")) == 1
    assert cluster.kube.patches() == 0


def test_operator_stays_within_the_least_privilege_role(cluster: Cluster) -> None:
    """Every request the operator made is allowed by k8s/rbac.yaml's Role (kmock logs them;
    the tests' own setup writes objects directly, not over HTTP)."""
    import yaml

    rbac = Path(__file__).resolve().parents[2] / "k8s" / "rbac.yaml"
    [role] = [d for d in yaml.safe_load_all(rbac.read_text()) if d["kind"] == "Role"]
    allowed = {
        (group, res, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for res in rule["resources"]
        for verb in rule["verbs"]
    }
    cluster.kube.emulator.faults.append(Fault("deployments", status=500))
    cluster.evidence([chunk(BAD, 0, known_good_version=GOOD, parity=0.3)])
    cluster.operator().reconcile_once()
    used = set()
    for request in cluster.kube.emulator._requests:
        res = request.resource
        assert res is not None
        verb = {"GET": "get" if request.name else "list", "PATCH": "patch", "POST": "create"}[
            request.method.value.upper()
        ]
        plural = f"{res.plural}/{request.subresource}" if request.subresource else res.plural
        used.add((res.group, plural, verb))
    assert used <= allowed, used - allowed
    assert ("apps", "deployments", "patch") in used
    assert ("modelguard.dev", "modelmonitors/status", "patch") in used
    assert ("", "events", "create") in used

"""Offline mode (no cluster): the same decision, the exact rollout-undo patch computed against
a Deployment synthesized from the registered versions, printed and audited, never sent."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from monitor.kube.offline import offline_target
from monitor.kube.rollout import VERSION_ANNOTATION
from monitor.metrics.registry import MonitorMetrics
from monitor.operator.reconciler import Operator
from monitor.store import Store
from monitor.store.sqlite import SqliteStore
from tests.support.kube import MODEL, chunk

GOOD, BAD = "good-aaaa", "bad-bbbb"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def register(store: Store, version: str) -> None:
    store.register(
        {
            "model": MODEL,
            "version": version,
            "learner": "xgboost",
            "metrics": {"reference": {"roc_auc": 0.84}},
            "reference": [],
            "artifact": base64.b64encode(b"unused").decode(),
        }
    )


def test_offline_operator_promotes_then_computes_the_rollback_patch(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "monitor.db") as store:
        # Built at start-up, before any predictor registered: it must see models added later.
        target = offline_target(store, namespace="demo")
        assert target.list_monitors() == []
        register(store, GOOD)
        register(store, BAD)
        for i in range(6):
            store.save_chunk(
                replace(
                    chunk(GOOD, i, known_good_version=None),
                    first_seq=i * 500,
                    last_seq=i * 500 + 499,
                )
            )
        metrics = MonitorMetrics()
        operator = Operator(store, target, clock=lambda: NOW, metrics=metrics)

        [first] = operator.reconcile_once()
        assert first.decision is not None and first.decision.action == "promote-known-good"
        assert store.get_state(f"known_good/{MODEL}") == {
            "version": GOOD,
            "revision": 1,
            "since": "2026-03-01T12:00:00Z",
        }

        store.save_chunk(
            replace(
                chunk(BAD, 0, known_good_version=GOOD, parity=0.4), first_seq=5000, last_seq=5499
            )
        )
        [second] = operator.reconcile_once()
        assert second.decision is not None
        assert (second.decision.trigger, second.outcome) == ("parity", "dry-run")
        assert (second.decision.from_revision, second.decision.target_revision) == (2, 1)
        ops = {op["path"]: op for op in second.patch}
        template = ops["/spec/template"]["value"]
        assert template["metadata"]["annotations"][VERSION_ANNOTATION] == GOOD
        assert "pod-template-hash" not in template["metadata"]["labels"]
        test_op = ops[
            f"/spec/template/metadata/annotations/{VERSION_ANNOTATION.replace('/', '~1')}"
        ]
        assert (test_op["op"], test_op["value"]) == ("test", BAD)
        [audit] = store.audit(model=MODEL, kind="dry-run-rollback")
        assert audit["patch"] == second.patch
        assert [e["reason"] for e in target.events] == ["KnownGood", "RollbackDryRun"]
        status = target.statuses["rain-forecast"]
        assert status["lastRollback"]["dryRun"] is True
        assert status["knownGoodVersion"] == GOOD and status["currentVersion"] == BAD

        labels = {"namespace": "demo", "modelmonitor": "rain-forecast"}
        rollbacks = metrics.registry.get_sample_value(
            "modelguard_rollbacks_total", {**labels, "trigger": "parity", "mode": "dryRun"}
        )
        assert rollbacks == 1
        ready = metrics.registry.get_sample_value(
            "modelguard_condition", {**labels, "type": "Ready"}
        )
        assert ready == 0

        [third] = operator.reconcile_once()  # idempotent: nothing new to say
        assert third.outcome == "dry-run" and third.patch == []
        assert len(target.events) == 2

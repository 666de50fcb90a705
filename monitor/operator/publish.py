"""What the operator tells the world: CR status, Events, audit records and metrics.

Why a module of its own: `monitor/operator.py` decides what to do and does it (state,
patch); everything here only reports, and must report each thing once (Events named by a
key, notifications remembered in the incident state), so a pass repeated after a crash
says nothing twice. Metrics never break reconciliation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monitor.decision.conditions import Condition, merge_conditions
from monitor.decision.decide import Decision
from monitor.decision.policy import Policy
from monitor.kube.rollout import Observation
from monitor.kube.target import Target, event_body
from monitor.operator.inputs import rejected_versions

if TYPE_CHECKING:
    from monitor.operator.reconciler import OperatorStore, ReconcileResult

LOG = logging.getLogger("modelguard.operator")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Publisher:
    """Status, Events, audit and metrics for one operator (its store, target and metrics)."""

    store: OperatorStore
    target: Target
    metrics: Any

    def rollback(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        decision: Decision | None,
        record: dict[str, Any],
        patch: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
        dry = bool(record.get("dryRun"))
        release = f"{record['fromVersion']}@{record['from']}"
        incident: dict[str, Any] = dict(self.store.get_state(f"incident/{ns}/{name}") or {})
        incident["last_rollback"] = record
        if dry:
            incident["dry_run_release"] = release
        else:
            incident.update({"handled_release": release, "last_rollback_time": record["time"]})
        self.store.put_state(f"incident/{ns}/{name}", incident)
        verb = "would roll back" if dry else "rolled back"
        message = (
            f"{verb} {policy.target_name} from revision {record['from']} "
            f"({record['fromVersion']}) to revision {record['to']} "
            f"({record['toVersion']}): {record['reason']}"
        )
        self.event(
            monitor,
            "RollbackDryRun" if dry else "RolledBack",
            message,
            now,
            release,
            warning=not dry,
        )
        self.store.append_audit(
            {
                "time": iso(now),
                "model": policy.model,
                "namespace": ns,
                "modelmonitor": name,
                "kind": "dry-run-rollback" if dry else "rollback",
                "mode": policy.mode,
                "patch": patch,
                "message": message,
                **record,
            }
        )
        self.metric("record_rollback", ns, name, str(record["trigger"]), policy.mode)

    def notify_once(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        decision: Decision,
        now: datetime,
        reason: str,
        kind: str,
    ) -> None:
        ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
        incident = dict(self.store.get_state(f"incident/{ns}/{name}") or {})
        key = f"{kind}:{decision.release}"
        if incident.get(f"notified_{kind}") == key:
            return
        incident[f"notified_{kind}"] = key
        self.store.put_state(f"incident/{ns}/{name}", incident)
        self.audit(monitor, policy, decision, kind, now)
        self.event(monitor, reason, decision.message, now, decision.release, warning=True)

    def audit(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        decision: Decision,
        kind: str,
        now: datetime,
    ) -> None:
        meta = monitor["metadata"]
        self.store.append_audit(
            {
                "time": iso(now),
                "model": policy.model,
                "namespace": meta["namespace"],
                "modelmonitor": meta["name"],
                "kind": kind,
                "mode": policy.mode,
                "fromVersion": decision.from_version,
                "from": decision.from_revision,
                "toVersion": decision.target_version,
                "to": decision.target_revision,
                "trigger": decision.trigger,
                "reason": decision.message,
            }
        )

    def event(
        self,
        monitor: Mapping[str, Any],
        reason: str,
        message: str,
        now: datetime,
        key: str,
        warning: bool = False,
    ) -> None:
        self.target.event(monitor, event_body(monitor, reason, message, now, key, warning))

    def status(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        seen: Observation | None,
        decision: Decision | None,
        now: datetime,
        not_found: str | None = None,
        patched: str = "none",
    ) -> dict[str, Any]:
        meta = monitor["metadata"]
        previous = (monitor.get("status") or {}).get("conditions") or []
        generation = meta.get("generation")
        if decision is None:
            conditions = merge_conditions(
                previous,
                [Condition("Ready", "False", "DeploymentNotFound", not_found or "")],
                now,
                generation,
            )
            return {"observedGeneration": generation, "conditions": conditions}
        kg = self.store.get_state(f"known_good/{policy.model}") or {}
        incident = self.store.get_state(f"incident/{meta['namespace']}/{meta['name']}") or {}
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "conditions": merge_conditions(previous, decision.conditions, now, generation),
            "currentRevision": seen.live_revision if seen else None,
            "currentVersion": seen.live_version if seen else None,
            "knownGoodRevision": kg.get("revision"),
            "knownGoodVersion": kg.get("version"),
            "rejectedVersions": sorted(rejected_versions(self.store, policy.model)),
        }
        if patched in ("patched", "already") and decision.target_version:
            status["currentRevision"] = decision.target_revision
            status["currentVersion"] = decision.target_version
        if decision.last_estimate:
            status["lastEstimate"] = {
                k: (v if k == "chunk" or v is None else f"{v:.4f}" if isinstance(v, float) else v)
                for k, v in decision.last_estimate.items()
            }
        if incident.get("last_rollback"):
            status["lastRollback"] = incident["last_rollback"]
        return {k: v for k, v in status.items() if v is not None}

    def invalid(
        self, monitor: Mapping[str, Any], error: str, now: datetime, result: ReconcileResult
    ) -> None:
        previous = (monitor.get("status") or {}).get("conditions") or []
        generation = monitor["metadata"].get("generation")
        result.status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                previous, [Condition("Ready", "False", "InvalidSpec", error)], now, generation
            ),
        }
        self.target.publish_status(monitor, result.status)
        self.event(monitor, "InvalidSpec", error, now, f"{generation}:{error}", warning=True)

    def metric(self, method: str, *args: Any) -> None:
        fn = getattr(self.metrics, method, None)
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:  # metrics never break reconciliation
            LOG.debug("metrics %s failed", method, exc_info=True)

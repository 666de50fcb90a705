"""What the operator tells the world: CR status, Events, audit records and metrics.

Why a module of its own: `reconciler.py` decides what to do and does it (state,
patch); everything here only reports, and must report each thing once (Events named by a
key, notifications remembered in the incident state), so a pass repeated after a crash
says nothing twice. Metrics never break reconciliation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from monitor.core.times import iso
from monitor.decision.candidates import CandidateVerdict, summary
from monitor.decision.conditions import candidate_condition, merge_conditions
from monitor.decision.policy import Policy
from monitor.decision.types import Condition, Decision
from monitor.memory.candidates import CandidateState
from monitor.memory.state import OperatorState, PolicyReport, RollbackRecord
from monitor.operator.ports import EventNote, Observation, OperatorMetrics, OperatorStore, Target

LOG = logging.getLogger("modelguard.operator")


@dataclass
class Publisher:
    """Status, Events, audit and metrics for one operator (its store, target and metrics)."""

    store: OperatorStore
    target: Target
    metrics: GuardedMetrics

    @property
    def state(self) -> OperatorState:
        return OperatorState(self.store)

    def rollback(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        record: RollbackRecord,
        patch: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
        dry = record.dry_run
        self.state.put_incident(ns, name, self.state.incident(ns, name).with_rollback(record))
        verb = "would roll back" if dry else "rolled back"
        message = (
            f"{verb} {policy.target_name} from revision {record.from_revision} "
            f"({record.from_version}) to revision {record.to_revision} "
            f"({record.to_version}): {record.reason}"
        )
        self.event(
            monitor,
            "RollbackDryRun" if dry else "RolledBack",
            message,
            now,
            record.release,
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
                **record.to_json(),
            }
        )
        self.metrics.record_rollback(ns, name, str(record.trigger), policy.mode)

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
        incident = self.state.incident(ns, name)
        key = f"{kind}:{decision.release}"
        if incident.notified.get(kind) == key:
            return
        notified = {**incident.notified, kind: key}
        self.state.put_incident(ns, name, replace(incident, notified=notified))
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
        self.target.event(monitor, EventNote(reason, message, now, key, warning))

    def status(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        seen: Observation | None,
        decision: Decision | None,
        now: datetime,
        not_found: str | None = None,
        patched: str = "none",
        candidates: Sequence[CandidateVerdict] = (),
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
        kg = self.state.known_good(policy.model)
        incident = self.state.incident(meta["namespace"], meta["name"])
        judged = (*decision.conditions, candidate_condition(candidates))
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "conditions": merge_conditions(previous, judged, now, generation),
            "currentRevision": seen.live_revision if seen else None,
            "currentVersion": seen.live_version if seen else None,
            "knownGoodRevision": kg.revision if kg else None,
            "knownGoodVersion": kg.version if kg else None,
            "rejectedVersions": sorted(self.state.rejections(policy.model)),
        }
        if patched in ("patched", "already") and decision.target_version:
            status["currentRevision"] = decision.target_revision
            status["currentVersion"] = decision.target_version
        if decision.last_estimate:
            status["lastEstimate"] = {
                k: (v if k == "chunk" or v is None else f"{v:.4f}" if isinstance(v, float) else v)
                for k, v in decision.last_estimate.items()
            }
        if incident.last_rollback is not None:
            status["lastRollback"] = incident.last_rollback.to_json()
        if candidates:
            status["candidates"] = [{**v.to_status(), "updated": iso(now)} for v in candidates]
            status["candidateSummary"] = summary(candidates)
        return {k: v for k, v in status.items() if v is not None}

    def candidates(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        verdicts: Mapping[str, CandidateVerdict],
        now: datetime,
    ) -> None:
        """Store the verdicts (the API and CLI read them), export them, and say each change
        of verdict once: an audit record and an Event with the evidence."""
        state = CandidateState(self.store)
        before = state.verdicts(policy.model)
        state.set_verdicts(policy.model, {v: verdict.to_json() for v, verdict in verdicts.items()})
        self.metrics.publish_candidates(policy.model, list(verdicts.values()))
        meta = monitor["metadata"]
        for version, verdict in verdicts.items():
            if (before.get(version) or {}).get("verdict") == verdict.verdict:
                continue
            self.store.append_audit(
                {
                    "time": iso(now),
                    "model": policy.model,
                    "namespace": meta["namespace"],
                    "modelmonitor": meta["name"],
                    "kind": "candidate-verdict",
                    **verdict.to_json(),
                }
            )
            if verdict.verdict != "Inconclusive":
                self.event(
                    monitor,
                    f"Candidate{verdict.verdict}",
                    f"candidate {version}: {verdict.verdict} ({verdict.reason}): "
                    f"{verdict.evidence()}",
                    now,
                    f"candidate:{version}:{verdict.verdict}",
                    warning=verdict.verdict in ("Worse", "Incompatible"),
                )

    def policy_report(
        self,
        monitor: Mapping[str, Any],
        model: str,
        report: PolicyReport,
        now: datetime,
        event: bool = True,
    ) -> None:
        """Record what is wrong with the policy (for `monitor status`); audit and post an
        Event when it changes, so a problem is never only a log line."""
        if not self.state.set_policy_report(model, report):
            return
        meta = monitor["metadata"]
        kind = "policy-unusable" if report.problems else "policy-usable"
        message = "; ".join(f"{r}: {m}" for r, m in report.problems) or "every rule can fire"
        self.store.append_audit(
            {
                "time": iso(now),
                "kind": kind,
                "model": model,
                "namespace": meta["namespace"],
                "modelmonitor": meta["name"],
                "problems": [list(p) for p in report.problems],
                "message": message,
            }
        )
        if report.problems and event:
            key = f"{meta.get('generation')}:{message}"
            self.event(monitor, "PolicyUnusable", message, now, key, warning=True)

    def invalid(self, monitor: Mapping[str, Any], error: str, now: datetime) -> dict[str, Any]:
        """An unparseable spec: Ready False and PolicyUnusable True (status and metrics; the
        other conditions keep their last value), an audit entry and an Event."""
        meta = monitor["metadata"]
        previous = (monitor.get("status") or {}).get("conditions") or []
        generation = meta.get("generation")
        new = [
            Condition("Ready", "False", "InvalidSpec", error),
            Condition("PolicyUnusable", "True", "InvalidSpec", error),
        ]
        kept = [
            Condition(str(c["type"]), c["status"], str(c.get("reason", "")), c.get("message", ""))
            for c in previous
            if c.get("type") not in ("Ready", "PolicyUnusable") and c.get("status")
        ]
        status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(previous, [*new, *kept], now, generation),
        }
        self.target.publish_status(monitor, status)
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        for cond in new:
            self.metrics.set_condition(ns, name, cond.type, cond.status == "True")
        spec = monitor.get("spec")
        model = spec.get("model") if isinstance(spec, Mapping) else None
        report = PolicyReport(ns, name, (("InvalidSpec", error),))
        owner = model if isinstance(model, str) and model else name
        self.policy_report(monitor, owner, report, now, event=False)
        self.event(monitor, "InvalidSpec", error, now, f"{generation}:{error}", warning=True)
        return status


class GuardedMetrics:
    """The operator's metrics, each call guarded: metrics never break reconciliation."""

    def __init__(self, inner: OperatorMetrics | None) -> None:
        self._inner = inner

    def _guard(self, call: Callable[[OperatorMetrics], None]) -> None:
        if self._inner is None:
            return
        try:
            call(self._inner)
        except Exception:
            LOG.debug("metrics call failed", exc_info=True)

    def init_rollbacks(self, ns: str, name: str, triggers: tuple[str, ...], mode: str) -> None:
        self._guard(lambda m: m.init_rollbacks(ns, name, triggers, mode))

    def record_rollback(self, ns: str, name: str, trigger: str, mode: str) -> None:
        self._guard(lambda m: m.record_rollback(ns, name, trigger, mode))

    def set_condition(self, ns: str, name: str, type_: str, status: bool) -> None:
        self._guard(lambda m: m.set_condition(ns, name, type_, status))

    def reconcile_error(self, ns: str, name: str) -> None:
        self._guard(lambda m: m.reconcile_error(ns, name))

    def publish_candidates(self, model: str, verdicts: Sequence[CandidateVerdict]) -> None:
        self._guard(lambda m: m.publish_candidates(model, verdicts))

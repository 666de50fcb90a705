"""The reconcile loop: for each ModelMonitor, read -> decide -> apply, in rounds.

Level-triggered and idempotent: every pass recomputes the decision from durable state (the
store: evidence, known-good, rejections, incidents) and the cluster (Deployment and its
ReplicaSets), so running it twice, or after a crash, does nothing twice. A pass is four
rounds, each decided here as `effects.Effects` and run by `apply.apply` (the one place that
writes, and where the Deployment patch is bracketed by its durable intent):

1. resume: a rollback left pending by a restart is finished first (it changes the Deployment
   the pass reads, and the incident the decision reads);
2. prepare: `spec.knownGood` and `spec.candidates` recorded (the decision reads them);
3. act: candidate verdicts, policy problems and the decision's action;
4. report: the status, with the patch's outcome and the state as it now is.

Reading state into the decision's input is `inputs.py`; the wording of status, Events and
audit is `publish.py`; the resource as read is `resource.py`; what the loop needs from the
cluster and the store is `ports.py`. `monitor/loops/wiring.py` builds the operator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.core.times import iso
from monitor.decision.conditions import candidate_condition
from monitor.decision.decide import decide
from monitor.decision.policy import Policy, PolicyError, parse_policy
from monitor.decision.types import TRIGGER_REASONS, Decision
from monitor.memory.audit import AuditEntry
from monitor.memory.candidates import CandidateState
from monitor.memory.state import (
    Incident,
    KnownGood,
    OperatorState,
    PendingRollback,
    PolicyReport,
    Rejection,
    RollbackPlan,
    RollbackRecord,
)
from monitor.operator import publish
from monitor.operator.apply import World, apply
from monitor.operator.effects import (
    NOTHING,
    CountReconcileError,
    Effects,
    InitRollbacks,
    Reject,
    Rollback,
    SetKnownGood,
    SyncSpecCandidates,
)
from monitor.operator.inputs import candidate_verdicts, decision_input, registered
from monitor.operator.ports import EventNote, Observation, OperatorMetrics, OperatorStore, Target
from monitor.operator.resource import ModelMonitor

LOG = logging.getLogger("modelguard.operator")
# Actions that are only said (once per release): their Event reason and audit kind.
NOTIFICATIONS = {
    "recommend-retraining": ("RetrainingRecommended", "retraining-recommended"),
    "unavailable": ("RollbackUnavailable", "rollback-unavailable"),
}


@dataclass
class ReconcileResult:
    namespace: str
    name: str
    decision: Decision | None = None
    # patched|already|dry-run|superseded|missing|failed|invalid|planned|none
    outcome: str = "none"
    patch: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Operator:
    def __init__(
        self,
        store: OperatorStore,
        target: Target,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self.store, self.target, self.clock = store, target, clock
        self.state = OperatorState(store)
        self.world = World(store, target, metrics)

    def reconcile_once(self) -> list[ReconcileResult]:
        """One pass over every ModelMonitor; one failing monitor never stops the others."""
        results = []
        for body in self.target.list_monitors():
            monitor = ModelMonitor.from_body(body)
            try:
                results.append(self.reconcile(monitor))
            except Exception as exc:  # reported, counted, retried next pass
                LOG.exception("reconcile of %s/%s failed", monitor.namespace, monitor.name)
                error = Effects(metrics=(CountReconcileError(monitor.namespace, monitor.name),))
                apply(self.world, monitor, error)
                results.append(
                    ReconcileResult(
                        monitor.namespace, monitor.name, outcome="failed", error=repr(exc)
                    )
                )
        return results

    def plan_once(self) -> list[ReconcileResult]:
        """What one pass would do, without doing any of it: no patch, no Event, no status and
        nothing written to the store (`reconcile --once --dry-run`)."""
        results = []
        for body in self.target.list_monitors():
            monitor = ModelMonitor.from_body(body)
            ns, name = monitor.namespace, monitor.name
            result = ReconcileResult(ns, name, outcome="planned")
            try:
                policy = parse_policy(monitor.spec or {})
            except PolicyError as exc:
                result.outcome, result.error = "invalid", str(exc)
                results.append(result)
                continue
            seen = self.target.observe(ns, policy.target_name)
            if seen is None:
                result.outcome = "missing"
                result.error = f"Deployment {ns}/{policy.target_name} not found"
                results.append(result)
                continue
            incident = self.state.incident(ns, name)
            result.decision = decide(
                decision_input(self.store, policy, seen, self.clock(), incident)
            )
            if result.decision.wants_rollback:
                result.patch = self.target.plan_patch(self._plan(ns, policy, result.decision))
            results.append(result)
        return results

    def run_forever(self, interval_seconds: float, stop: threading.Event) -> None:
        while not stop.is_set():
            self.reconcile_once()
            stop.wait(interval_seconds)

    def reconcile(self, body: Mapping[str, Any] | ModelMonitor) -> ReconcileResult:
        monitor = body if isinstance(body, ModelMonitor) else ModelMonitor.from_body(body)
        ns, name = monitor.namespace, monitor.name
        result = ReconcileResult(ns, name)
        now = self.clock()
        try:
            policy = parse_policy(monitor.spec or {})
        except PolicyError as exc:
            result.outcome, result.error = "invalid", str(exc)
            reported = publish.invalid(monitor, str(exc), now, self.state)
            apply(self.world, monitor, reported)
            result.status = dict(reported.status or {})
            return result
        # Counters start at 0 so that the first rollback is an increase Prometheus can see.
        init = InitRollbacks(ns, name, tuple(TRIGGER_REASONS), policy.mode)
        apply(self.world, monitor, Effects(metrics=(init,)))
        # 1. resume
        resumed = apply(self.world, monitor, self._resume(monitor, policy))
        if resumed.outcome is not None:
            result.outcome, result.patch = resumed.outcome, resumed.patch
        seen = self.target.observe(ns, policy.target_name)
        if seen is None:
            msg = f"Deployment {ns}/{policy.target_name} not found"
            result.status = publish.status(
                monitor, policy, self.state, None, None, now, not_found=msg
            )
            apply(self.world, monitor, Effects(status=result.status))
            return result
        # 2. prepare
        apply(self.world, monitor, self._prepare(monitor, policy, seen, now))
        # 3. act
        inp = decision_input(self.store, policy, seen, now, self.state.incident(ns, name))
        decision = decide(inp)
        result.decision = decision
        verdicts = candidate_verdicts(self.store, policy)
        report = PolicyReport(ns, name, tuple((p.reason, p.message) for p in inp.problems))
        before = CandidateState(self.store).verdicts(policy.model)
        stored_report = self.state.policy_report(policy.model)
        acting = (
            publish.candidates(monitor, policy, verdicts, before, now)
            + publish.policy_report(monitor, policy.model, report, stored_report, now)
            + self._act(monitor, policy, decision, now, result)
        )
        acted = apply(self.world, monitor, acting)
        if acted.outcome is not None:
            result.outcome, result.patch = acted.outcome, acted.patch
        # 4. report
        judged = list(verdicts.values())
        result.status = publish.status(
            monitor,
            policy,
            self.state,
            seen,
            decision,
            now,
            patched=result.outcome,
            candidates=judged,
        )
        conditions = (*decision.conditions, candidate_condition(judged))
        apply(
            self.world,
            monitor,
            Effects(status=result.status) + publish.conditions_metrics(monitor, conditions),
        )
        return result

    # -- deciding --------------------------------------------------------------------------

    def _resume(self, monitor: ModelMonitor, policy: Policy) -> Effects:
        """A rollback decided before a restart: finish it exactly once."""
        pending = self.state.pending(monitor.namespace, monitor.name)
        if pending is None:
            return NOTHING
        rollback = Rollback(
            pending, policy.model, policy.mode, policy.target_name, self.clock(), resumed=True
        )
        return Effects(rollback=rollback)

    def _prepare(
        self, monitor: ModelMonitor, policy: Policy, seen: Observation, now: datetime
    ) -> Effects:
        sync = SyncSpecCandidates(
            policy.model,
            tuple(policy.candidates),
            policy.candidate_policy.backfill_chunks,
            iso(now),
        )
        return self._declare_from_spec(monitor, policy, seen, now) + Effects(writes=(sync,))

    def _declare_from_spec(
        self, monitor: ModelMonitor, policy: Policy, seen: Observation, now: datetime
    ) -> Effects:
        """`spec.knownGood` is the baseline while no version is known-good: recorded once
        (audited `known-good-declared`), so a first release is judged against it. A later
        promotion or `known-good set` supersedes it."""
        version = policy.known_good
        if version is None or policy.mode == "off":
            return NOTHING
        if self.state.known_good(policy.model) is not None:
            return NOTHING
        if version in self.state.rejections(policy.model):
            return NOTHING
        if not registered(self.store, policy.model, version):
            return NOTHING  # reported as a policy problem (KnownGoodUnknown)
        carrying = [n for n, v in seen.history.items() if v == version]
        revision = max(carrying) if carrying else None
        declared = KnownGood(version, revision, iso(now), declared_by="spec")
        entry = AuditEntry(
            kind="known-good-declared",
            model=policy.model,
            version=version,
            by="spec",
            namespace=monitor.namespace,
            modelmonitor=monitor.name,
            time=iso(now),
            details={"revision": revision},
        )
        return Effects(writes=(SetKnownGood(policy.model, declared),), audit=(entry,))

    def _act(
        self,
        monitor: ModelMonitor,
        policy: Policy,
        decision: Decision,
        now: datetime,
        result: ReconcileResult,
    ) -> Effects:
        if policy.mode == "off":
            return NOTHING  # observe only: conditions and metrics, nothing recorded or posted
        incident = self.state.incident(monitor.namespace, monitor.name)
        if decision.action == "promote-known-good":
            assert decision.target_version is not None
            kg = KnownGood(decision.target_version, decision.target_revision, iso(now))
            note = EventNote("KnownGood", decision.message, now, f"{decision.release}")
            return Effects(
                writes=(SetKnownGood(policy.model, kg),),
                audit=(publish.decision_audit(monitor, policy, decision, "known-good", now),),
                events=(note,),
            )
        if decision.action in NOTIFICATIONS:
            reason, kind = NOTIFICATIONS[decision.action]
            return publish.notify_once(monitor, policy, decision, now, incident, reason, kind)
        if decision.wants_rollback:
            return self._rollback(monitor, policy, decision, now, incident, result)
        return NOTHING

    def _rollback(
        self,
        monitor: ModelMonitor,
        policy: Policy,
        decision: Decision,
        now: datetime,
        incident: Incident,
        result: ReconcileResult,
    ) -> Effects:
        assert decision.target_revision is not None and decision.target_version is not None
        rejected = NOTHING
        if decision.reject_reason:
            reject = Reject(
                policy.model,
                decision.from_version or "",
                Rejection(decision.reject_reason, iso(now)),
            )
            rejected = Effects(writes=(reject,))
            if decision.action == "reject-and-rollback":
                note = EventNote(
                    "ReleaseRejected", decision.message, now, decision.release, warning=True
                )
                rejected += Effects(events=(note,))
        plan = self._plan(monitor.namespace, policy, decision)
        record = RollbackRecord(
            from_revision=decision.from_revision,
            to_revision=decision.target_revision,
            from_version=decision.from_version,
            to_version=decision.target_version,
            trigger=decision.trigger,
            reason=decision.message,
            time=iso(now),
            dry_run=decision.effect == "dry-run",
        )
        if record.dry_run:
            result.outcome = "dry-run"
            if incident.dry_run_release == decision.release:
                return rejected  # already reported; a dry run changes nothing, so nothing new
            result.patch = self.target.plan_patch(plan)
            return rejected + publish.rolled_back(
                monitor, policy.model, policy.mode, policy.target_name, record, result.patch, now
            )
        pending = PendingRollback(plan, record, decision.release, policy.mode, policy.model)
        rollback = Rollback(pending, policy.model, policy.mode, policy.target_name, now)
        return rejected + Effects(rollback=rollback)

    @staticmethod
    def _plan(namespace: str, policy: Policy, decision: Decision) -> RollbackPlan:
        assert decision.target_revision is not None and decision.target_version is not None
        cause = (
            f"modelguard: rollback {decision.from_version} -> {decision.target_version} "
            f"(revision {decision.target_revision}): {decision.message}"
        )[:1000]
        return RollbackPlan(
            namespace,
            policy.target_name,
            decision.target_revision,
            decision.target_version,
            decision.from_version or "",
            cause,
        )

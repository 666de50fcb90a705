"""The reconcile loop: for each ModelMonitor, read -> decide -> act -> publish.

Level-triggered and idempotent: every pass recomputes the decision from durable state (the
store: evidence, known-good, rejections, incidents) and the cluster (Deployment and its
ReplicaSets), so running it twice, or after a crash, does nothing twice. The one step that
must not be repeated, the Deployment patch, is bracketed by a durable "pending rollback"
intent written before the patch and cleared after the rollback is published: a monitor
restarted in between finds the intent, re-reads the Deployment and either finishes the
publication (the patch landed) or patches once (it did not).

Reading state into the decision's input is `inputs.py`; status, Events, audit and metrics
are `publish.py`; what the loop needs from the cluster and the store is `ports.py`. This
module holds the loop and the acting; `monitor/loops/wiring.py` builds it.
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
from monitor.memory.candidates import CandidateState
from monitor.memory.state import (
    KnownGood,
    OperatorState,
    PendingRollback,
    PolicyReport,
    Rejection,
    RollbackPlan,
    RollbackRecord,
)
from monitor.operator.inputs import candidate_verdicts, decision_input, registered
from monitor.operator.ports import Observation, OperatorMetrics, OperatorStore, Target
from monitor.operator.publish import GuardedMetrics, Publisher

LOG = logging.getLogger("modelguard.operator")


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
        self.publish = Publisher(store, target, GuardedMetrics(metrics))

    def reconcile_once(self) -> list[ReconcileResult]:
        """One pass over every ModelMonitor; one failing monitor never stops the others."""
        results = []
        for monitor in self.target.list_monitors():
            meta = monitor.get("metadata", {})
            try:
                results.append(self.reconcile(monitor))
            except Exception as exc:  # reported, counted, retried next pass
                LOG.exception("reconcile of %s/%s failed", meta.get("namespace"), meta.get("name"))
                ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
                self.publish.metrics.reconcile_error(ns, name)
                results.append(
                    ReconcileResult(
                        meta.get("namespace", ""),
                        meta.get("name", ""),
                        outcome="failed",
                        error=repr(exc),
                    )
                )
        return results

    def plan_once(self) -> list[ReconcileResult]:
        """What one pass would do, without doing any of it: no patch, no Event, no status and
        nothing written to the store (`reconcile --once --dry-run`)."""
        results = []
        for monitor in self.target.list_monitors():
            meta = monitor.get("metadata", {})
            ns, name = str(meta.get("namespace", "default")), str(meta.get("name", ""))
            result = ReconcileResult(ns, name, outcome="planned")
            try:
                policy = parse_policy(monitor.get("spec") or {})
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

    def reconcile(self, monitor: Mapping[str, Any]) -> ReconcileResult:
        meta = monitor.get("metadata", {})
        ns, name = str(meta.get("namespace", "default")), str(meta.get("name", ""))
        result = ReconcileResult(ns, name)
        now = self.clock()
        try:
            policy = parse_policy(monitor.get("spec") or {})
        except PolicyError as exc:
            result.outcome, result.error = "invalid", str(exc)
            result.status = self.publish.invalid(monitor, str(exc), now)
            return result
        # Counters start at 0 so that the first rollback is an increase Prometheus can see.
        triggers = tuple(TRIGGER_REASONS)
        self.publish.metrics.init_rollbacks(ns, name, triggers, policy.mode)
        self._finish_pending(monitor, policy, result)
        seen = self.target.observe(ns, policy.target_name)
        if seen is None:
            msg = f"Deployment {ns}/{policy.target_name} not found"
            result.status = self.publish.status(monitor, policy, None, None, now, not_found=msg)
            self.target.publish_status(monitor, result.status)
            return result
        self._declare_from_spec(monitor, policy, seen, now)
        CandidateState(self.store).sync_spec(
            policy.model, policy.candidates, policy.candidate_policy.backfill_chunks, iso(now)
        )
        inp = decision_input(self.store, policy, seen, now, self.state.incident(ns, name))
        decision = decide(inp)
        result.decision = decision
        verdicts = candidate_verdicts(self.store, policy)
        self.publish.candidates(monitor, policy, verdicts, now)
        self.publish.policy_report(
            monitor,
            policy.model,
            PolicyReport(ns, name, tuple((p.reason, p.message) for p in inp.problems)),
            now,
        )
        self._act(monitor, policy, seen, decision, now, result)
        result.status = self.publish.status(
            monitor,
            policy,
            seen,
            decision,
            now,
            patched=result.outcome,
            candidates=list(verdicts.values()),
        )
        self.target.publish_status(monitor, result.status)
        for cond in (*decision.conditions, candidate_condition(list(verdicts.values()))):
            self.publish.metrics.set_condition(ns, name, cond.type, cond.status == "True")
        return result

    # -- acting ----------------------------------------------------------------------------

    def _declare_from_spec(
        self, monitor: Mapping[str, Any], policy: Policy, seen: Observation, now: datetime
    ) -> None:
        """`spec.knownGood` is the baseline while no version is known-good: recorded once
        (audited `known-good-declared`), so a first release is judged against it. A later
        promotion or `known-good set` supersedes it."""
        version = policy.known_good
        if version is None or policy.mode == "off":
            return
        if self.state.known_good(policy.model) is not None:
            return
        if version in self.state.rejections(policy.model):
            return
        if not registered(self.store, policy.model, version):
            return  # reported as a policy problem (KnownGoodUnknown)
        carrying = [n for n, v in seen.history.items() if v == version]
        revision = max(carrying) if carrying else None
        self.state.set_known_good(
            policy.model, KnownGood(version, revision, iso(now), declared_by="spec")
        )
        meta = monitor["metadata"]
        self.store.append_audit(
            {
                "time": iso(now),
                "kind": "known-good-declared",
                "model": policy.model,
                "version": version,
                "revision": revision,
                "by": "spec",
                "namespace": meta["namespace"],
                "modelmonitor": meta["name"],
            }
        )

    def _act(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        seen: Observation,
        decision: Decision,
        now: datetime,
        result: ReconcileResult,
    ) -> None:
        if policy.mode == "off":
            return  # observe only: conditions and metrics, nothing recorded or posted
        if decision.action == "promote-known-good":
            assert decision.target_version is not None
            self.state.set_known_good(
                policy.model,
                KnownGood(decision.target_version, decision.target_revision, iso(now)),
            )
            self.publish.audit(monitor, policy, decision, "known-good", now)
            self.publish.event(monitor, "KnownGood", decision.message, now, f"{decision.release}")
        elif decision.action == "recommend-retraining":
            self.publish.notify_once(
                monitor, policy, decision, now, "RetrainingRecommended", "retraining-recommended"
            )
        elif decision.action == "unavailable":
            self.publish.notify_once(
                monitor, policy, decision, now, "RollbackUnavailable", "rollback-unavailable"
            )
        elif decision.wants_rollback:
            self._rollback(monitor, policy, seen, decision, now, result)

    def _rollback(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        seen: Observation,
        decision: Decision,
        now: datetime,
        result: ReconcileResult,
    ) -> None:
        ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
        assert decision.target_revision is not None and decision.target_version is not None
        if decision.reject_reason:
            self._reject(policy.model, decision.from_version or "", decision.reject_reason, now)
            if decision.action == "reject-and-rollback":
                self.publish.event(
                    monitor,
                    "ReleaseRejected",
                    decision.message,
                    now,
                    decision.release,
                    warning=True,
                )
        plan = self._plan(ns, policy, decision)
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
            if self.state.incident(ns, name).dry_run_release == decision.release:
                return  # already reported; a dry run changes nothing, so nothing new to say
            result.patch = self.target.plan_patch(plan)
            self.publish.rollback(monitor, policy, record, result.patch, now)
            return
        pending = PendingRollback(plan, record, decision.release, policy.mode, policy.model)
        self.state.set_pending(ns, name, pending)
        outcome, result.patch = self.target.rollback(plan)
        result.outcome = outcome
        self._settle(monitor, policy, record, outcome, result.patch, now)

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

    def _settle(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        record: RollbackRecord,
        outcome: str,
        patch: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
        if outcome in ("patched", "already"):
            self.publish.rollback(monitor, policy, record, patch, now)
        elif outcome == "failed":
            return  # keep the intent: the next pass re-reads and retries
        else:  # superseded or missing: someone else changed the Deployment; do not fight it
            self.store.append_audit(
                {
                    "time": iso(now),
                    "model": policy.model,
                    "namespace": ns,
                    "modelmonitor": name,
                    "kind": f"rollback-{outcome}",
                    **record.to_json(),
                }
            )
        self.state.clear_pending(ns, name)

    def _finish_pending(
        self, monitor: Mapping[str, Any], policy: Policy, result: ReconcileResult
    ) -> None:
        """A rollback decided before a restart: finish it exactly once."""
        ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
        pending = self.state.pending(ns, name)
        if pending is None:
            return
        plan = pending.plan
        LOG.warning(
            "resuming pending rollback %s -> revision %s", plan.from_version, plan.target_revision
        )
        outcome, patch = self.target.rollback(plan)
        result.outcome, result.patch = outcome, patch
        self._settle(monitor, policy, pending.record, outcome, patch, self.clock())

    def _reject(self, model: str, version: str, reason: str, now: datetime) -> None:
        self.state.reject(model, version, Rejection(reason, iso(now)))

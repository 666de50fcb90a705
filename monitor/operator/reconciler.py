"""The reconcile loop: for each ModelMonitor, read -> decide -> act -> publish.

Level-triggered and idempotent: every pass recomputes the decision from durable state (the
store: evidence, known-good, rejections, incidents) and the cluster (Deployment and its
ReplicaSets), so running it twice, or after a crash, does nothing twice. The one step that
must not be repeated, the Deployment patch, is bracketed by a durable "pending rollback"
intent written before the patch and cleared after the rollback is published: a monitor
restarted in between finds the intent, re-reads the Deployment and either finishes the
publication (the patch landed) or patches once (it did not).

Reading state into the decision's input is `monitor/operator_inputs.py`; status, Events,
audit and metrics are `monitor/operator_publish.py`; the no-cluster target is
`monitor/offline.py`. This module holds the loop, the acting, and the wiring.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from monitor.decision.decide import TRIGGER_REASONS, Decision, decide
from monitor.decision.policy import Policy, PolicyError, parse_policy
from monitor.evidence import ChunkEvidence
from monitor.kube.offline import offline_target
from monitor.kube.rollout import Observation, RollbackPlan
from monitor.kube.target import Target
from monitor.operator.inputs import decision_input, incident_of
from monitor.operator.publish import Publisher, iso

LOG = logging.getLogger("modelguard.operator")


class OperatorStore(Protocol):
    """The part of `monitor.store.Store` the operator uses (contracts §4)."""

    def chunks(self, model: str, version: str | None = None) -> list[ChunkEvidence]: ...
    def registration(self, model: str, version: str) -> dict[str, Any]: ...
    def get_state(self, key: str) -> dict[str, Any] | None: ...
    def put_state(self, key: str, value: dict[str, Any]) -> None: ...
    def append_audit(self, record: dict[str, Any]) -> Any: ...


@dataclass
class ReconcileResult:
    namespace: str
    name: str
    decision: Decision | None = None
    outcome: str = "none"  # patched|already|dry-run|superseded|missing|failed|invalid|none
    patch: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Operator:
    def __init__(
        self,
        store: OperatorStore,
        target: Target,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: Any = None,
    ) -> None:
        self.store, self.target, self.clock = store, target, clock
        self.metrics = metrics if metrics is not None else _default_metrics()
        self.publish = Publisher(store, target, self.metrics)

    def reconcile_once(self) -> list[ReconcileResult]:
        """One pass over every ModelMonitor; one failing monitor never stops the others."""
        results = []
        for monitor in self.target.list_monitors():
            meta = monitor.get("metadata", {})
            try:
                results.append(self.reconcile(monitor))
            except Exception as exc:  # reported, counted, retried next pass
                LOG.exception("reconcile of %s/%s failed", meta.get("namespace"), meta.get("name"))
                self.publish.metric("reconcile_error", meta.get("namespace"), meta.get("name"))
                results.append(
                    ReconcileResult(
                        meta.get("namespace", ""),
                        meta.get("name", ""),
                        outcome="failed",
                        error=repr(exc),
                    )
                )
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
            self.publish.invalid(monitor, str(exc), now, result)
            return result
        # Counters start at 0 so that the first rollback is an increase Prometheus can see.
        self.publish.metric("init_rollbacks", ns, name, tuple(TRIGGER_REASONS), policy.mode)
        self._finish_pending(monitor, policy, result)
        seen = self.target.observe(ns, policy.target_name)
        if seen is None:
            msg = f"Deployment {ns}/{policy.target_name} not found"
            result.status = self.publish.status(monitor, policy, None, None, now, not_found=msg)
            self.target.publish_status(monitor, result.status)
            return result
        decision = decide(
            decision_input(self.store, policy, seen, now, incident_of(self.store, ns, name))
        )
        result.decision = decision
        self._act(monitor, policy, seen, decision, now, result)
        result.status = self.publish.status(
            monitor, policy, seen, decision, now, patched=result.outcome
        )
        self.target.publish_status(monitor, result.status)
        for cond in decision.conditions:
            self.publish.metric("set_condition", ns, name, cond.type, cond.status == "True")
        return result

    # -- acting ----------------------------------------------------------------------------

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
            self.store.put_state(
                f"known_good/{policy.model}",
                {
                    "version": decision.target_version,
                    "revision": decision.target_revision,
                    "since": iso(now),
                },
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
        cause = (
            f"modelguard: rollback {decision.from_version} -> {decision.target_version} "
            f"(revision {decision.target_revision}): {decision.message}"
        )[:1000]
        plan = RollbackPlan(
            ns,
            policy.target_name,
            decision.target_revision,
            decision.target_version,
            decision.from_version or "",
            cause,
        )
        record = {
            "from": decision.from_revision,
            "to": decision.target_revision,
            "fromVersion": decision.from_version,
            "toVersion": decision.target_version,
            "trigger": decision.trigger,
            "reason": decision.message,
            "time": iso(now),
            "dryRun": decision.effect == "dry-run",
        }
        if decision.effect == "dry-run":
            result.outcome = "dry-run"
            incident = self.store.get_state(f"incident/{ns}/{name}") or {}
            if incident.get("dry_run_release") == decision.release:
                return  # already reported; a dry run changes nothing, so nothing new to say
            result.patch = self.target.plan_patch(plan)
            self.publish.rollback(monitor, policy, decision, record, result.patch, now)
            return
        self.store.put_state(
            f"pending_rollback/{ns}/{name}",
            {
                "plan": plan.__dict__,
                "record": record,
                "release": decision.release,
                "mode": policy.mode,
                "model": policy.model,
            },
        )
        outcome, result.patch = self.target.rollback(plan)
        result.outcome = outcome
        self._settle(monitor, policy, decision, record, outcome, result.patch, now)

    def _settle(
        self,
        monitor: Mapping[str, Any],
        policy: Policy,
        decision: Decision | None,
        record: dict[str, Any],
        outcome: str,
        patch: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
        if outcome in ("patched", "already"):
            self.publish.rollback(monitor, policy, decision, record, patch, now)
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
                    **record,
                }
            )
        self.store.put_state(f"pending_rollback/{ns}/{name}", {})

    def _finish_pending(
        self, monitor: Mapping[str, Any], policy: Policy, result: ReconcileResult
    ) -> None:
        """A rollback decided before a restart: finish it exactly once."""
        ns, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
        pending = self.store.get_state(f"pending_rollback/{ns}/{name}")
        if not pending:
            return
        plan = RollbackPlan(**pending["plan"])
        LOG.warning(
            "resuming pending rollback %s -> revision %s", plan.from_version, plan.target_revision
        )
        outcome, patch = self.target.rollback(plan)
        result.outcome, result.patch = outcome, patch
        self._settle(monitor, policy, None, pending["record"], outcome, patch, self.clock())

    def _reject(self, model: str, version: str, reason: str, now: datetime) -> None:
        state = dict(self.store.get_state(f"rejected/{model}") or {})
        versions = dict(state.get("versions") or {})
        versions.setdefault(version, {"reason": reason, "time": iso(now)})
        self.store.put_state(f"rejected/{model}", {"versions": versions})


def _default_metrics() -> Any:
    import importlib

    try:
        return importlib.import_module("monitor.metrics")
    except ImportError:
        return None


def build_operator(settings: Any, store: Any) -> Operator:
    """The operator for `MonitorSettings`: a real API server, or offline when there is none."""
    from monitor.kube.target import KubeTarget

    mode = getattr(settings, "kubernetes", "off")
    api_client = None if mode == "off" else _api_client(mode, getattr(settings, "kubeconfig", None))
    if api_client is None:
        LOG.info("no Kubernetes API: offline operator (dryRun patches are logged and audited)")
        target = offline_target(store, settings.namespace, settings.chunk_size)
        return Operator(store, target)
    return Operator(store, KubeTarget(api_client, namespace=settings.namespace))


def _api_client(mode: str, kubeconfig: Any) -> Any:
    from kubernetes import client, config

    if mode in ("incluster", "auto"):
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            if mode == "incluster":
                raise
    try:
        config.load_kube_config(config_file=str(kubeconfig) if kubeconfig else None)
        return client.ApiClient()
    except (config.ConfigException, OSError):
        if mode == "kubeconfig":
            raise
        return None

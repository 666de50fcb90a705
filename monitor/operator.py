"""The reconcile loop: for each ModelMonitor, read -> decide -> act -> publish.

Level-triggered and idempotent: every pass recomputes the decision from durable state (the
store: evidence, known-good, rejections, incidents) and the cluster (Deployment and its
ReplicaSets), so running it twice, or after a crash, does nothing twice. The one step that
must not be repeated, the Deployment patch, is bracketed by a durable "pending rollback"
intent written before the patch and cleared after the rollback is published: a monitor
restarted in between finds the intent, re-reads the Deployment and either finishes the
publication (the patch landed) or patches once (it did not).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from monitor.decision import (
    TRIGGER_REASONS,
    Decision,
    DecisionInput,
    Incident,
    KnownGood,
    decide,
    merge_conditions,
)
from monitor.evidence import ChunkEvidence
from monitor.kube import Observation, RollbackPlan, Target, event_body
from monitor.policy import Policy, PolicyError, parse_policy

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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


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

    def reconcile_once(self) -> list[ReconcileResult]:
        """One pass over every ModelMonitor; one failing monitor never stops the others."""
        results = []
        for monitor in self.target.list_monitors():
            meta = monitor.get("metadata", {})
            try:
                results.append(self.reconcile(monitor))
            except Exception as exc:  # reported, counted, retried next pass
                LOG.exception("reconcile of %s/%s failed", meta.get("namespace"), meta.get("name"))
                self._metric("reconcile_error", meta.get("namespace"), meta.get("name"))
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
            self._publish_invalid(monitor, str(exc), now, result)
            return result
        # Counters start at 0 so that the first rollback is an increase Prometheus can see.
        self._metric("init_rollbacks", ns, name, tuple(TRIGGER_REASONS), policy.mode)
        self._finish_pending(monitor, policy, result)
        seen = self.target.observe(ns, policy.target_name)
        if seen is None:
            msg = f"Deployment {ns}/{policy.target_name} not found"
            result.status = self._status(monitor, policy, None, None, now, not_found=msg)
            self.target.publish_status(monitor, result.status)
            return result
        decision = decide(self._inputs(policy, seen, now, self._incident(ns, name)))
        result.decision = decision
        self._act(monitor, policy, seen, decision, now, result)
        result.status = self._status(monitor, policy, seen, decision, now, patched=result.outcome)
        self.target.publish_status(monitor, result.status)
        for cond in decision.conditions:
            self._metric("set_condition", ns, name, cond.type, cond.status == "True")
        return result

    # -- reading ---------------------------------------------------------------------------

    def _inputs(
        self, policy: Policy, seen: Observation, now: datetime, incident: Incident
    ) -> DecisionInput:
        kg_state = self.store.get_state(f"known_good/{policy.model}")
        kg = (
            KnownGood(kg_state["version"], kg_state.get("revision"), kg_state.get("since"))
            if kg_state
            else None
        )
        live = seen.live_version
        cleared = self._cleared(policy.model).get(live or "")
        evidence = self.store.chunks(policy.model, live) if live else []
        if cleared is not None:  # judged afresh from what was analysed after the clearing
            evidence = [c for c in evidence if (_parse_time(c.analysed_at) or cleared) > cleared]
        return DecisionInput(
            policy=policy,
            live_version=live,
            live_revision=seen.live_revision,
            revisions=seen.history,
            evidence=evidence,
            gate_waived=cleared is not None,
            known_good=kg,
            rejected=self._rejected(policy.model),
            now=now,
            live_holdout=self._holdout(policy.model, live),
            known_good_holdout=self._holdout(policy.model, kg.version if kg else None),
            incident=incident,
        )

    def _holdout(self, model: str, version: str | None) -> Mapping[str, float | None] | None:
        if version is None:
            return None
        try:
            registration = self.store.registration(model, version)
        except (KeyError, LookupError):
            return None
        if not registration:
            return None
        return (registration.get("metrics") or {}).get("reference")

    def _cleared(self, model: str) -> dict[str, datetime]:
        """Versions whose rejection an operator cleared (store audit), with the latest time."""
        audit = getattr(self.store, "audit", None)
        if audit is None:
            return {}
        cleared: dict[str, datetime] = {}
        for entry in audit(model=model, kind="rejection-cleared"):
            when = _parse_time(entry.get("at") or entry.get("time"))
            if when is not None and entry.get("version"):
                cleared[str(entry["version"])] = when
        return cleared

    def _rejected(self, model: str) -> dict[str, str]:
        state = self.store.get_state(f"rejected/{model}") or {}
        return {v: str(info.get("reason", "")) for v, info in (state.get("versions") or {}).items()}

    def _incident(self, ns: str, name: str) -> Incident:
        state = self.store.get_state(f"incident/{ns}/{name}") or {}
        return Incident(
            _parse_time(state.get("last_rollback_time")),
            state.get("handled_release"),
            state.get("last_rollback"),
        )

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
                    "since": _iso(now),
                },
            )
            self._audit(monitor, policy, decision, "known-good", now)
            self._event(monitor, "KnownGood", decision.message, now, f"{decision.release}")
        elif decision.action == "recommend-retraining":
            self._notify_once(
                monitor, policy, decision, now, "RetrainingRecommended", "retraining-recommended"
            )
        elif decision.action == "unavailable":
            self._notify_once(
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
                self._event(
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
            "time": _iso(now),
            "dryRun": decision.effect == "dry-run",
        }
        if decision.effect == "dry-run":
            result.outcome = "dry-run"
            incident = self.store.get_state(f"incident/{ns}/{name}") or {}
            if incident.get("dry_run_release") == decision.release:
                return  # already reported; a dry run changes nothing, so nothing new to say
            result.patch = self.target.plan_patch(plan)
            self._publish_rollback(monitor, policy, decision, record, result.patch, now)
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
            self._publish_rollback(monitor, policy, decision, record, patch, now)
        elif outcome == "failed":
            return  # keep the intent: the next pass re-reads and retries
        else:  # superseded or missing: someone else changed the Deployment; do not fight it
            self.store.append_audit(
                {
                    "time": _iso(now),
                    "model": policy.model,
                    "namespace": ns,
                    "modelmonitor": name,
                    "kind": f"rollback-{outcome}",
                    **record,
                }
            )
        self.store.put_state(f"pending_rollback/{ns}/{name}", {})

    def _publish_rollback(
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
        self._event(
            monitor,
            "RollbackDryRun" if dry else "RolledBack",
            message,
            now,
            release,
            warning=not dry,
        )
        self.store.append_audit(
            {
                "time": _iso(now),
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
        self._metric("record_rollback", ns, name, str(record["trigger"]), policy.mode)

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
        versions.setdefault(version, {"reason": reason, "time": _iso(now)})
        self.store.put_state(f"rejected/{model}", {"versions": versions})

    def _notify_once(
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
        self._audit(monitor, policy, decision, kind, now)
        self._event(monitor, reason, decision.message, now, decision.release, warning=True)

    def _audit(
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
                "time": _iso(now),
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

    def _event(
        self,
        monitor: Mapping[str, Any],
        reason: str,
        message: str,
        now: datetime,
        key: str,
        warning: bool = False,
    ) -> None:
        self.target.event(monitor, event_body(monitor, reason, message, now, key, warning))

    # -- publishing ------------------------------------------------------------------------

    def _status(
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
            from monitor.decision import Condition

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
            "rejectedVersions": sorted(self._rejected(policy.model)),
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

    def _publish_invalid(
        self, monitor: Mapping[str, Any], error: str, now: datetime, result: ReconcileResult
    ) -> None:
        from monitor.decision import Condition

        previous = (monitor.get("status") or {}).get("conditions") or []
        generation = monitor["metadata"].get("generation")
        result.status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                previous, [Condition("Ready", "False", "InvalidSpec", error)], now, generation
            ),
        }
        self.target.publish_status(monitor, result.status)
        self._event(monitor, "InvalidSpec", error, now, f"{generation}:{error}", warning=True)

    def _metric(self, method: str, *args: Any) -> None:
        fn = getattr(self.metrics, method, None)
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:  # metrics never break reconciliation
            LOG.debug("metrics %s failed", method, exc_info=True)


def _default_metrics() -> Any:
    import importlib

    try:
        return importlib.import_module("monitor.metrics")
    except ImportError:
        return None


def offline_target(store: Any, namespace: str = "default", chunk_size: int = 500) -> Any:
    """No cluster (kubernetes=off): one dryRun ModelMonitor per model in the store; revision
    n = the n-th registered version; live = the version whose records were analysed last."""
    from monitor.kube import OfflineTarget

    def versions(model: str) -> list[str]:
        return [v.version for v in store.versions(model) if v.registered_at]

    def live(model: str) -> str | None:
        chunks = store.chunks(model)
        if chunks:
            return str(max(chunks, key=lambda c: c.last_seq).version)
        with_records = [v.version for v in store.versions(model) if v.records]
        return with_records[-1] if with_records else None

    def monitors() -> list[dict[str, Any]]:
        return [_offline_monitor(model, namespace, chunk_size) for model in store.models()]

    return OfflineTarget(monitors=monitors, versions=versions, live_version=live)


def _offline_monitor(model: str, namespace: str, chunk_size: int) -> dict[str, Any]:
    return {
        "apiVersion": "modelguard.dev/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": model.replace("_", "-"), "namespace": namespace, "generation": 1},
        "spec": {
            "model": model,
            "mode": "dryRun",
            "chunkSize": chunk_size,
            "targetRef": {"kind": "Deployment", "name": f"{model.replace('_', '-')}-predictor"},
        },
    }


def build_operator(settings: Any, store: Any) -> Operator:
    """The operator for `MonitorSettings`: a real API server, or offline when there is none."""
    from monitor.kube import KubeTarget

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

"""The one place a reconcile pass writes: durable state, audit, Events, the Deployment patch,
the CR status and metrics, applied from `effects.Effects` in that fixed order.

Why the order: what the store remembers comes first (it is what keeps a repeated pass from
acting twice), then the audit and Events that report it (Events are named by a key, so one
posted again after a crash is the same Event). The Deployment patch is bracketed by a
durable intent: written before the patch, cleared only after its outcome is reported, kept
when the patch failed, so a monitor restarted in between resumes it (`Rollback.resumed`) and
the target, re-reading the Deployment, either finds it done (`already`) or patches once.
Status is written after the patch (it names what is live); metrics last, and never break
reconciliation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from monitor.memory.candidates import CandidateState
from monitor.memory.state import OperatorState
from monitor.operator import publish
from monitor.operator.effects import (
    Applied,
    CountReconcileError,
    CountRollback,
    Effects,
    ExportCandidates,
    InitRollbacks,
    Metric,
    NoteNotified,
    NoteRollback,
    Reject,
    Rollback,
    SetCondition,
    SetKnownGood,
    SetPolicyReport,
    SetVerdicts,
    SyncSpecCandidates,
    Write,
)
from monitor.operator.ports import OperatorMetrics, OperatorStore, Target
from monitor.operator.resource import ModelMonitor

LOG = logging.getLogger("modelguard.operator")


@dataclass(frozen=True)
class World:
    """Where effects land: the store, the cluster (or its offline stand-in), the metrics."""

    store: OperatorStore
    target: Target
    metrics: OperatorMetrics | None = None


def apply(world: World, monitor: ModelMonitor, effects: Effects) -> Applied:
    """Run `effects` for `monitor`, in field order; what the patch did, if one was made."""
    state = OperatorState(world.store)
    for write in effects.writes:
        _write(world.store, state, write)
    for entry in effects.audit:
        world.store.append_audit(entry)
    for note in effects.events:
        world.target.event(monitor, note)
    applied = Applied()
    if effects.rollback is not None:
        applied = _rollback(world, state, monitor, effects.rollback)
    if effects.status is not None:
        world.target.publish_status(monitor, dict(effects.status))
    for metric in effects.metrics:
        _metric(world.metrics, metric)
    return applied


def _rollback(
    world: World, state: OperatorState, monitor: ModelMonitor, rollback: Rollback
) -> Applied:
    ns, name = monitor.namespace, monitor.name
    if rollback.resumed:
        plan = rollback.pending.plan
        LOG.warning(
            "resuming pending rollback %s -> revision %s", plan.from_version, plan.target_revision
        )
    else:
        state.set_pending(ns, name, rollback.pending)
    outcome, patch = world.target.rollback(rollback.pending.plan)
    apply(world, monitor, publish.settled(monitor, rollback, outcome, patch))
    if outcome != "failed":  # failed: keep the intent, the next pass re-reads and retries
        state.clear_pending(ns, name)
    return Applied(outcome, patch)


def _write(store: OperatorStore, state: OperatorState, write: Write) -> None:
    match write:
        case SetKnownGood(model, known_good):
            state.set_known_good(model, known_good)
        case Reject(model, version, rejection):
            state.reject(model, version, rejection)
        case NoteRollback(ns, name, record):
            state.put_incident(ns, name, state.incident(ns, name).with_rollback(record))
        case NoteNotified(ns, name, kind, key):
            incident = state.incident(ns, name)
            notified = {**incident.notified, kind: key}
            state.put_incident(ns, name, replace(incident, notified=notified))
        case SetPolicyReport(model, report):
            state.set_policy_report(model, report)
        case SyncSpecCandidates(model, versions, backfill, at):
            CandidateState(store).sync_spec(model, versions, backfill, at)
        case SetVerdicts(model, verdicts):
            CandidateState(store).set_verdicts(model, verdicts)


def _metric(metrics: OperatorMetrics | None, metric: Metric) -> None:
    if metrics is None:
        return
    try:
        match metric:
            case InitRollbacks(ns, name, triggers, mode):
                metrics.init_rollbacks(ns, name, triggers, mode)
            case CountRollback(ns, name, trigger, mode):
                metrics.record_rollback(ns, name, trigger, mode)
            case SetCondition(ns, name, type_, status):
                metrics.set_condition(ns, name, type_, status)
            case CountReconcileError(ns, name):
                metrics.reconcile_error(ns, name)
            case ExportCandidates(model, verdicts):
                metrics.publish_candidates(model, list(verdicts))
    except Exception:
        LOG.debug("metrics call failed", exc_info=True)

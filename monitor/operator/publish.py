"""What the operator tells the world, worded: CR status, Events, audit entries and metrics.

Why a module of its own: `reconciler.py` decides what to do; here each thing it reports is
built, as `effects.Effects` (nothing here writes: `apply.py` does). Each thing is said once:
Events are named by a key, notifications and policy reports are compared with what the
store remembers, and a verdict is announced only when it changes, so a pass repeated after a
crash says nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.core.times import iso
from monitor.decision.candidates import CandidateVerdict, summary
from monitor.decision.conditions import candidate_condition, merge_conditions
from monitor.decision.policy import Policy
from monitor.decision.types import Condition, Decision
from monitor.memory.audit import AuditEntry
from monitor.memory.state import Incident, OperatorState, PolicyReport, RollbackRecord
from monitor.operator.effects import (
    NOTHING,
    CountRollback,
    Effects,
    ExportCandidates,
    NoteNotified,
    NoteRollback,
    Rollback,
    SetCondition,
    SetPolicyReport,
    SetVerdicts,
)
from monitor.operator.ports import EventNote, Observation
from monitor.operator.resource import ModelMonitor


def audit_entry(
    monitor: ModelMonitor, kind: str, model: str, now: datetime, details: Mapping[str, Any]
) -> AuditEntry:
    """An entry about what `monitor` did; `details` are stored flat, after the coordinates."""
    return AuditEntry(
        kind=kind,
        model=model,
        namespace=monitor.namespace,
        modelmonitor=monitor.name,
        time=iso(now),
        details=details,
    )


def decision_audit(
    monitor: ModelMonitor, policy: Policy, decision: Decision, kind: str, now: datetime
) -> AuditEntry:
    details = {
        "mode": policy.mode,
        "fromVersion": decision.from_version,
        "from": decision.from_revision,
        "toVersion": decision.target_version,
        "to": decision.target_revision,
        "trigger": decision.trigger,
        "reason": decision.message,
    }
    return audit_entry(monitor, kind, policy.model, now, details)


def rolled_back(
    monitor: ModelMonitor,
    model: str,
    mode: str,
    target_name: str,
    record: RollbackRecord,
    patch: list[dict[str, Any]],
    now: datetime,
) -> Effects:
    """A rollback done (or, dry run, one that would be): the incident remembers it, an Event
    and an audit entry say it, the counter counts it."""
    dry = record.dry_run
    verb = "would roll back" if dry else "rolled back"
    message = (
        f"{verb} {target_name} from revision {record.from_revision} "
        f"({record.from_version}) to revision {record.to_revision} "
        f"({record.to_version}): {record.reason}"
    )
    kind = "dry-run-rollback" if dry else "rollback"
    reason = "RollbackDryRun" if dry else "RolledBack"
    return Effects(
        writes=(NoteRollback(monitor.namespace, monitor.name, record),),
        audit=(
            audit_entry(
                monitor,
                kind,
                model,
                now,
                {"mode": mode, "patch": patch, "message": message, **record.to_json()},
            ),
        ),
        events=(EventNote(reason, message, now, record.release, warning=not dry),),
        metrics=(CountRollback(monitor.namespace, monitor.name, str(record.trigger), mode),),
    )


def settled(
    monitor: ModelMonitor, rollback: Rollback, outcome: str, patch: list[dict[str, Any]]
) -> Effects:
    """What to report once the patch answered. `failed` says nothing (the intent stays and
    the next pass retries); superseded or missing (someone else changed the Deployment:
    not fought) is audited."""
    record, now = rollback.pending.record, rollback.time
    if outcome in ("patched", "already"):
        return rolled_back(
            monitor, rollback.model, rollback.mode, rollback.target_name, record, patch, now
        )
    if outcome == "failed":
        return NOTHING
    entry = audit_entry(monitor, f"rollback-{outcome}", rollback.model, now, record.to_json())
    return Effects(audit=(entry,))


def notify_once(
    monitor: ModelMonitor,
    policy: Policy,
    decision: Decision,
    now: datetime,
    incident: Incident,
    reason: str,
    kind: str,
) -> Effects:
    """Say `kind` about this release once (the incident remembers it was said)."""
    key = f"{kind}:{decision.release}"
    if incident.notified.get(kind) == key:
        return NOTHING
    return Effects(
        writes=(NoteNotified(monitor.namespace, monitor.name, kind, key),),
        audit=(decision_audit(monitor, policy, decision, kind, now),),
        events=(EventNote(reason, decision.message, now, decision.release, warning=True),),
    )


def status(
    monitor: ModelMonitor,
    policy: Policy,
    state: OperatorState,
    seen: Observation | None,
    decision: Decision | None,
    now: datetime,
    not_found: str | None = None,
    patched: str = "none",
    candidates: Sequence[CandidateVerdict] = (),
) -> dict[str, Any]:
    """`status` after the pass: conditions merged with the last ones, what is live, the
    known-good and rejections as stored now, the last estimate, rollback and verdicts."""
    generation = monitor.generation
    if decision is None:
        conditions = merge_conditions(
            monitor.conditions,
            [Condition("Ready", "False", "DeploymentNotFound", not_found or "")],
            now,
            generation,
        )
        return {"observedGeneration": generation, "conditions": conditions}
    kg = state.known_good(policy.model)
    incident = state.incident(monitor.namespace, monitor.name)
    judged = (*decision.conditions, candidate_condition(candidates))
    body: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": merge_conditions(monitor.conditions, judged, now, generation),
        "currentRevision": seen.live_revision if seen else None,
        "currentVersion": seen.live_version if seen else None,
        "knownGoodRevision": kg.revision if kg else None,
        "knownGoodVersion": kg.version if kg else None,
        "rejectedVersions": sorted(state.rejections(policy.model)),
    }
    if patched in ("patched", "already") and decision.target_version:
        body["currentRevision"] = decision.target_revision
        body["currentVersion"] = decision.target_version
    if decision.last_estimate:
        body["lastEstimate"] = {
            k: (v if k == "chunk" or v is None else f"{v:.4f}" if isinstance(v, float) else v)
            for k, v in decision.last_estimate.items()
        }
    if incident.last_rollback is not None:
        body["lastRollback"] = incident.last_rollback.to_json()
    if policy.drift.features:  # what the analysis applies (PolicyUnusable names misfits)
        body["drift"] = {"features": policy.drift.to_json()}
    if candidates:
        body["candidates"] = [{**v.to_status(), "updated": iso(now)} for v in candidates]
        body["candidateSummary"] = summary(candidates)
    return {k: v for k, v in body.items() if v is not None}


def conditions_metrics(monitor: ModelMonitor, conditions: Sequence[Condition]) -> Effects:
    found = tuple(
        SetCondition(monitor.namespace, monitor.name, c.type, c.status == "True")
        for c in conditions
    )
    return Effects(metrics=found)


def candidates(
    monitor: ModelMonitor,
    policy: Policy,
    verdicts: Mapping[str, CandidateVerdict],
    before: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> Effects:
    """Store the verdicts (the API and CLI read them), export them, and say each change of
    verdict (against `before`, the stored ones) once: an audit entry and, when conclusive,
    an Event with the evidence."""
    audit: list[AuditEntry] = []
    events: list[EventNote] = []
    for version, verdict in verdicts.items():
        if (before.get(version) or {}).get("verdict") == verdict.verdict:
            continue
        audit.append(
            audit_entry(monitor, "candidate-verdict", policy.model, now, verdict.to_json())
        )
        if verdict.verdict != "Inconclusive":
            events.append(
                EventNote(
                    f"Candidate{verdict.verdict}",
                    f"candidate {version}: {verdict.verdict} ({verdict.reason}): "
                    f"{verdict.evidence()}",
                    now,
                    f"candidate:{version}:{verdict.verdict}",
                    warning=verdict.verdict in ("Worse", "Incompatible"),
                )
            )
    stored = {v: verdict.to_json() for v, verdict in verdicts.items()}
    return Effects(
        writes=(SetVerdicts(policy.model, stored),),
        audit=tuple(audit),
        events=tuple(events),
        metrics=(ExportCandidates(policy.model, tuple(verdicts.values())),),
    )


def policy_report(
    monitor: ModelMonitor,
    model: str,
    report: PolicyReport,
    stored: PolicyReport | None,
    now: datetime,
    event: bool = True,
) -> Effects:
    """Record what is wrong with the policy (for `monitor status`) when it differs from
    `stored`; audit it and post an Event, so a problem is never only a log line."""
    if stored == report:
        return NOTHING
    kind = "policy-unusable" if report.problems else "policy-usable"
    message = "; ".join(f"{r}: {m}" for r, m in report.problems) or "every rule can fire"
    problems = [list(p) for p in report.problems]
    entry = audit_entry(monitor, kind, model, now, {"problems": problems, "message": message})
    events: tuple[EventNote, ...] = ()
    if report.problems and event:
        key = f"{monitor.generation}:{message}"
        events = (EventNote("PolicyUnusable", message, now, key, warning=True),)
    return Effects(writes=(SetPolicyReport(model, report),), audit=(entry,), events=events)


def invalid(monitor: ModelMonitor, error: str, now: datetime, state: OperatorState) -> Effects:
    """An unparseable spec: Ready False and PolicyUnusable True (status and metrics; the
    other conditions keep their last value), the report (audited once) and an Event."""
    generation = monitor.generation
    new = [
        Condition("Ready", "False", "InvalidSpec", error),
        Condition("PolicyUnusable", "True", "InvalidSpec", error),
    ]
    kept = [
        Condition(str(c["type"]), c["status"], str(c.get("reason", "")), c.get("message", ""))
        for c in monitor.conditions
        if c.get("type") not in ("Ready", "PolicyUnusable") and c.get("status")
    ]
    body = {
        "observedGeneration": generation,
        "conditions": merge_conditions(monitor.conditions, [*new, *kept], now, generation),
    }
    owner = monitor.declared_model or monitor.name
    report = PolicyReport(monitor.namespace, monitor.name, (("InvalidSpec", error),))
    reported = policy_report(monitor, owner, report, state.policy_report(owner), now, event=False)
    note = EventNote("InvalidSpec", error, now, f"{generation}:{error}", warning=True)
    return (
        Effects(status=body) + conditions_metrics(monitor, new) + reported + Effects(events=(note,))
    )

"""Reading durable state into a `DecisionInput`: known-good, rejections, clearings, incident.

Why a module of its own: the decision is pure (`monitor/decision.py`), so everything it
judges must be gathered first, from the store (evidence, registrations, state keys, audit)
and from what the cluster showed (`Observation`). Read-only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.decision.decide import DecisionInput, Incident, KnownGood
from monitor.decision.policy import Policy
from monitor.kube.rollout import Observation

if TYPE_CHECKING:
    from monitor.operator.reconciler import OperatorStore


def parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def decision_input(
    store: OperatorStore, policy: Policy, seen: Observation, now: datetime, incident: Incident
) -> DecisionInput:
    kg_state = store.get_state(f"known_good/{policy.model}")
    kg = (
        KnownGood(kg_state["version"], kg_state.get("revision"), kg_state.get("since"))
        if kg_state
        else None
    )
    live = seen.live_version
    cleared = cleared_rejections(store, policy.model).get(live or "")
    evidence = store.chunks(policy.model, live) if live else []
    if cleared is not None:  # judged afresh from what was analysed after the clearing
        evidence = [c for c in evidence if (parse_time(c.analysed_at) or cleared) > cleared]
    return DecisionInput(
        policy=policy,
        live_version=live,
        live_revision=seen.live_revision,
        revisions=seen.history,
        evidence=evidence,
        gate_waived=cleared is not None,
        known_good=kg,
        rejected=rejected_versions(store, policy.model),
        now=now,
        live_holdout=holdout(store, policy.model, live),
        known_good_holdout=holdout(store, policy.model, kg.version if kg else None),
        incident=incident,
    )


def holdout(
    store: OperatorStore, model: str, version: str | None
) -> Mapping[str, float | None] | None:
    if version is None:
        return None
    try:
        registration = store.registration(model, version)
    except (KeyError, LookupError):
        return None
    if not registration:
        return None
    return (registration.get("metrics") or {}).get("reference")


def cleared_rejections(store: OperatorStore, model: str) -> dict[str, datetime]:
    """Versions whose rejection an operator cleared (store audit), with the latest time."""
    audit = getattr(store, "audit", None)
    if audit is None:
        return {}
    cleared: dict[str, datetime] = {}
    for entry in audit(model=model, kind="rejection-cleared"):
        when = parse_time(entry.get("at") or entry.get("time"))
        if when is not None and entry.get("version"):
            cleared[str(entry["version"])] = when
    return cleared


def rejected_versions(store: OperatorStore, model: str) -> dict[str, str]:
    state = store.get_state(f"rejected/{model}") or {}
    return {v: str(info.get("reason", "")) for v, info in (state.get("versions") or {}).items()}


def incident_of(store: OperatorStore, ns: str, name: str) -> Incident:
    state = store.get_state(f"incident/{ns}/{name}") or {}
    return Incident(
        parse_time(state.get("last_rollback_time")),
        state.get("handled_release"),
        state.get("last_rollback"),
    )

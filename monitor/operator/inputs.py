"""Reading durable state into a `DecisionInput`: known-good, rejections, clearings, incident.

Why a module of its own: the decision is pure (`monitor/decision/`), so everything it
judges must be gathered first, from the store (evidence, registrations, operator state,
audit) and from what the cluster showed (`Observation`). Read-only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from monitor.decision.policy import Policy
from monitor.decision.types import DecisionInput
from monitor.operator.ports import Observation, OperatorStore
from monitor.state import Incident, OperatorState, parse_time


def decision_input(
    store: OperatorStore, policy: Policy, seen: Observation, now: datetime, incident: Incident
) -> DecisionInput:
    state = OperatorState(store)
    kg = state.known_good(policy.model)
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
        rejected={v: r.reason for v, r in state.rejections(policy.model).items()},
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
    cleared: dict[str, datetime] = {}
    for entry in store.audit(model=model, kind="rejection-cleared"):
        when = parse_time(entry.get("at") or entry.get("time"))
        if when is not None and entry.get("version"):
            cleared[str(entry["version"])] = when
    return cleared

"""Reading durable state into a `DecisionInput`: known-good, rejections, clearings, incident.

Why a module of its own: the decision is pure (`monitor/decision/`), so everything it
judges must be gathered first, from the store (evidence, registrations, operator state,
audit) and from what the cluster showed (`Observation`). Read-only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from monitor.decision.policy import Policy, PolicyProblem, resolve
from monitor.decision.types import DecisionInput
from monitor.operator.ports import Observation, OperatorStore
from monitor.state import Incident, KnownGood, OperatorState, parse_time


def decision_input(
    store: OperatorStore, policy: Policy, seen: Observation, now: datetime, incident: Incident
) -> DecisionInput:
    """The decision's input: the policy resolved for the live version's chunking (its
    defaults scaled to the chunk, its problems named), evidence, known-good, rejections."""
    state = OperatorState(store)
    live = seen.live_version
    chunking = state.chunking(policy.model, live) if live else None
    policy, found = resolve(policy, chunking)
    problems = list(found)
    declared = registered(store, policy.model, policy.known_good)
    if policy.known_good is not None and not declared:
        problems.append(
            PolicyProblem(
                "KnownGoodUnknown",
                f"spec.knownGood {policy.known_good} is not registered with the monitor",
            )
        )
    kg = state.known_good(policy.model)
    if kg is None and declared and policy.known_good is not None:
        kg = KnownGood(policy.known_good, None, None, declared_by="spec")
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
        problems=tuple(problems),
        chunking=chunking,
    )


def registered(store: OperatorStore, model: str, version: str | None) -> bool:
    if version is None:
        return False
    try:
        store.registration(model, version)
    except (KeyError, LookupError):
        return False
    return True


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

"""Reading durable state into a `DecisionInput`: known-good, rejections, clearings, incident,
and the release gate's hold-out metrics, which the monitor computes itself (a registration's
self-declared `metrics` decide nothing: docs/monitor.md#trust-boundary).

Why a module of its own: the decision is pure (`monitor/decision/`), so everything it
judges must be gathered first, from the store (evidence, registrations, operator state,
audit) and from what the cluster showed (`Observation`). Read-only: nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monitor.analysis.holdout import gate_holdout
from monitor.core.times import parse_time
from monitor.decision.candidates import CandidateVerdict, judge
from monitor.decision.policy import Policy, PolicyProblem, resolve
from monitor.decision.rules import gap_filter
from monitor.decision.types import DecisionInput
from monitor.memory.candidates import CandidateState
from monitor.memory.state import Incident, KnownGood, OperatorState
from monitor.operator.ports import Observation, OperatorStore


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
    problems.extend(drift_problems(store, policy, live))
    kg = state.known_good(policy.model)
    if kg is None and declared and policy.known_good is not None:
        kg = KnownGood(policy.known_good, None, None, declared_by="spec")
    cleared = cleared_rejections(store, policy.model).get(live or "")
    evidence = store.chunks(policy.model, live) if live else []
    live_holdout, known_good_holdout = gate_holdouts(
        store, policy.model, live, kg.version if kg else None
    )
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
        live_holdout=live_holdout,
        known_good_holdout=known_good_holdout,
        incident=incident,
        problems=tuple(problems),
        chunking=chunking,
        candidate=candidate_verdict(store, policy, live) if live else None,
    )


def drift_problems(store: OperatorStore, policy: Policy, live: str | None) -> list[PolicyProblem]:
    """`spec.drift.features` entries that cannot apply to the live version's schema (no such
    feature, or a method its type has no statistic for): the analysis leaves them out."""
    reg = _registration(store, policy.model, live) if policy.drift.features else None
    if reg is None:
        return []
    features = (reg.get("schema") or {}).get("features") or []
    categorical = {str(f.get("name")): f.get("dtype") == "category" for f in features}
    return [
        PolicyProblem("DriftSettingNotApplicable", message)
        for message in policy.drift.problems(categorical)
    ]


def candidate_verdicts(store: OperatorStore, policy: Policy) -> dict[str, CandidateVerdict]:
    """Every declared candidate's verdict under the spec's `candidatePolicy`."""
    declared = CandidateState(store).entries(policy.model)
    found = {v: candidate_verdict(store, policy, v) for v in sorted(declared)}
    return {v: verdict for v, verdict in found.items() if verdict is not None}


def candidate_verdict(
    store: OperatorStore, policy: Policy, version: str
) -> CandidateVerdict | None:
    """`version`'s verdict from its same-rows chunks; None when it was never declared a
    candidate and has no such chunks. A candidate dropped from `spec.candidates` keeps its
    evidence (deploying it is then judged on it); one withdrawn by its last declaration
    through the API loses it (`CandidateState.remove`)."""
    state = CandidateState(store)
    chunks = state.chunks(policy.model, version)
    if not chunks and version not in state.entries(policy.model):
        return None
    reg = _registration(store, policy.model, version)
    baseline = max(chunks, key=lambda c: c.analysed_at).baseline_version if chunks else None
    base_reg = _registration(store, policy.model, baseline)
    same_learner = reg is None or base_reg is None or reg.get("learner") == base_reg.get("learner")
    # Counted as the rollback rules count chunks, at the baseline's chunk size.
    sizing = OperatorState(store).chunking(policy.model, baseline) if baseline else None
    gaps = gap_filter(resolve(policy, sizing)[0], baseline)
    return judge(version, chunks, policy.candidate_policy, same_learner, reg is not None, gaps)


def registered(store: OperatorStore, model: str, version: str | None) -> bool:
    if version is None:
        return False
    return _registration(store, model, version) is not None


def gate_holdouts(
    store: OperatorStore, model: str, live: str | None, known_good: str | None
) -> tuple[Mapping[str, float | None] | None, Mapping[str, float | None] | None]:
    """(live, known-good) hold-out metrics for the release gate, both computed by the
    monitor (never a registration's own `metrics`): the known-good's on its reference rows
    (stored at registration, `monitor_holdout`), the live version's re-scored by its
    artifact on those same rows (`monitor.analysis.holdout.gate_holdout`; when that cannot be
    done, its own `monitor_holdout`). None: unknown.

    Only the registrations' heads are read (no reference rows): the rows are parsed only
    when a pair is scored for the first time (`_scored`), so a pass with nothing new to
    gate parses no registration (issue 24: a 1.3 MB parse per model per pass)."""
    if live is None or known_good is None:
        return None, None
    kg_head = _registration(store, model, known_good)
    live_head = _registration(store, model, live)
    if live_head is None or kg_head is None:
        return None, None
    kg_metrics = kg_head.get("monitor_holdout") or _scored(store, model, known_good, kg_head, None)
    live_metrics = _scored(store, model, live, live_head, kg_head) or live_head.get(
        "monitor_holdout"
    )
    return live_metrics, kg_metrics


_SCORED: dict[tuple[str, ...], dict[str, float | None] | None] = {}


def _scored(
    store: OperatorStore,
    model: str,
    version: str | None,
    head: Mapping[str, Any],
    on: Mapping[str, Any] | None,
) -> dict[str, float | None] | None:
    """Metrics of `version`'s artifact on `on`'s reference rows (None: its own), once per
    pair of registrations (a registration never changes: its artifact digest and
    registration time name it, with the store it lives in). The full registrations, with
    their reference rows, are read here only, on a miss."""
    key = (
        _location(store),
        model,
        str(version),
        str(head.get("artifact_sha256")),
        str(head.get("registered_at")),
        str(on.get("version") if on else ""),
        str(on.get("artifact_sha256") if on else ""),
        str(on.get("registered_at") if on else ""),
    )
    if key not in _SCORED:
        if len(_SCORED) > 1024:
            _SCORED.clear()
        try:
            reg = store.registration(model, str(version))
            theirs = store.registration(model, str(on["version"])) if on else None
            artifact = store.artifact(model, str(version))
            _SCORED[key] = gate_holdout(reg, artifact, theirs)
        except (KeyError, LookupError, ValueError):
            _SCORED[key] = None
    return _SCORED[key]


def _location(store: OperatorStore) -> str:
    """Which database a cached score belongs to (two stores may hold the same names)."""
    location = getattr(store, "location", None)
    return str(location if location is not None else id(store))


def _registration(store: OperatorStore, model: str, version: str | None) -> dict[str, Any] | None:
    """The registration's head: everything but the reference rows and the artifact."""
    if version is None:
        return None
    try:
        return store.registration(model, version, with_reference=False) or None
    except (KeyError, LookupError):
        return None


def cleared_rejections(store: OperatorStore, model: str) -> dict[str, datetime]:
    """Versions whose rejection an operator cleared (store audit), with the latest time."""
    cleared: dict[str, datetime] = {}
    for entry in store.audit(model=model, kind="rejection-cleared"):
        when = parse_time(entry.get("at") or entry.get("time"))
        if when is not None and entry.get("version"):
            cleared[str(entry["version"])] = when
    return cleared

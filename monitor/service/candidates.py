"""Candidates (docs/monitor.md#candidates): versions registered but not serving, judged on
the rows the baseline serves. Declared here from the API or the CLI (source "api"), beside
a ModelMonitor's `spec.candidates` (source "spec", synced by the operator); the
declarations are `CandidateState`'s (monitor/memory/candidates.py). Each change of a
declaration is audited (`candidate-added`, `candidate-removed`).

The listing's verdict is the operator's last stored one; when none is stored (no
ModelMonitor judged the candidate) or it is unreadable, one is computed now from the
candidate's chunks under the default candidate policy: the service decides, the API and the
CLI print what it answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from contract.registration import Registration
from monitor.core.times import now_iso
from monitor.decision.policy import Policy
from monitor.memory.audit import AuditEntry
from monitor.memory.candidates import CandidateEntry, CandidateState
from monitor.operator.inputs import candidate_verdict
from monitor.service.errors import ConflictError, NotFoundError
from monitor.service.ports import ServiceStore
from monitor.service.registration import ArtifactLimits, RegistrationStatus, register
from monitor.service.views import CandidateInfo, CandidateList, CandidateVerdictBody

SOURCE = "api"  # the API's and the CLI's declarations (a ModelMonitor's are "spec")


@dataclass(frozen=True)
class Declaration:
    """A declared candidate: `added` False when the API had declared it already;
    `registration` how its registration went when it came with one."""

    entry: CandidateEntry
    added: bool
    registration: RegistrationStatus | None = None


def register_and_declare(
    store: ServiceStore, reg: Registration, raw: bytes, limits: ArtifactLimits
) -> Declaration:
    """Register `reg` (vetted exactly as any registration) and declare it a candidate.
    Raises as `registration.register` does. Blocking: call it from a thread."""
    status = register(store, reg, raw, limits)
    return _declare(store, reg.model, reg.version, status)


def declare(store: ServiceStore, model: str, version: str) -> Declaration:
    """Declare an already registered version a candidate; `NotFoundError` if unregistered."""
    if (model, version) not in store.registered_pairs():
        raise NotFoundError(f"{model}:{version} is not registered", "version")
    return _declare(store, model, version, None)


def withdraw(store: ServiceStore, model: str, version: str) -> bool:
    """Withdraw the API's declaration (its scored chunks are dropped once nothing declares
    it); False when the API had not declared it. `NotFoundError` when it is not a
    candidate; `ConflictError`, changing nothing, while a ModelMonitor's spec declares it."""
    state = CandidateState(store)
    entry = state.entries(model).get(version)
    if entry is None:
        raise NotFoundError(f"{model}:{version} is not a candidate", "version")
    if "spec" in entry.sources:
        raise ConflictError(
            f"{model}:{version} is declared by a ModelMonitor's spec.candidates: remove it there",
            "version",
        )
    removed, left = state.remove(model, version, SOURCE)
    if removed:
        store.append_audit(_audit("candidate-removed", model, version, left))
    return removed


def listing(store: ServiceStore, model: str) -> CandidateList:
    """Every declared candidate of `model` with its verdict (the module docstring says
    which); `NotFoundError` for a model the monitor knows nothing of."""
    found = _listing(store, model)
    if not found.candidates and model not in store.models():
        raise NotFoundError(f"model {model!r} is unknown", "model")
    return found


def listings(store: ServiceStore) -> list[CandidateList]:
    """The listing of every model that has candidates, in the store's model order."""
    found = [_listing(store, m) for m in store.models()]
    return [lst for lst in found if lst.candidates]


def _listing(store: ServiceStore, model: str) -> CandidateList:
    state = CandidateState(store)
    stored = state.verdicts(model)
    policy = Policy(model=model, target_name="")  # only its default candidate_policy is used
    out = []
    for version, entry in sorted(state.entries(model).items()):
        verdict: CandidateVerdictBody | None = None
        if version in stored:
            try:
                verdict = CandidateVerdictBody.model_validate(stored[version])
            except ValidationError:
                verdict = None
        if verdict is None:
            computed = candidate_verdict(store, policy, version)
            if computed is not None:
                verdict = CandidateVerdictBody.model_validate(computed.to_json())
        out.append(CandidateInfo.model_validate({**entry.to_json(), "verdict": verdict}))
    return CandidateList(model=model, candidates=out)


def _declare(
    store: ServiceStore, model: str, version: str, registration: RegistrationStatus | None
) -> Declaration:
    """Declare `version` from the API (audited when new)."""
    state = CandidateState(store)
    added = state.add(model, version, SOURCE, at=now_iso(), by="operator")
    entry = state.entries(model)[version]
    if added:
        store.append_audit(_audit("candidate-added", model, version, entry.sources))
    return Declaration(entry, added, registration)


def _audit(kind: str, model: str, version: str, sources: tuple[str, ...]) -> AuditEntry:
    """A declaration change: who changed it (`by`) and who declares it after (`sources`)."""
    return AuditEntry(
        kind, model, version, by=SOURCE, time=None, details={"sources": list(sources)}
    )

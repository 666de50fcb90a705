"""The decision's inputs and verdict: plain data, below the rules, conditions and flow.

Why a module of its own: the rules (`rules.py`), the conditions (`conditions.py`) and the
flow (`decide.py`) all speak these types; with them here, none of those imports another
upward and no import cycle is hidden behind `TYPE_CHECKING`. Within the package it imports
only `policy.py` and `candidates.py` (the `Policy` and `CandidateVerdict` it carries),
which import nothing of the decision's above them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from monitor.core.evidence import ChunkEvidence
from monitor.decision.candidates import CandidateVerdict
from monitor.decision.policy import Policy, PolicyProblem
from monitor.memory.state import ChunkingStatus, Incident, KnownGood

CONDITION_TYPES = (
    "Ready",
    "Degraded",
    "DriftDetected",
    "RolledBack",
    "RetrainingRecommended",
    "RollbackUnavailable",
    "PolicyUnusable",
    "WaitingForData",
)  # and `CandidateEvaluated`, which the operator adds from the candidates' verdicts


# Every status condition the operator writes; the CRD's `status.conditions[].type` enum must
# list exactly these, or a real API server refuses the whole status update.
STATUS_CONDITION_TYPES = (*CONDITION_TYPES, "CandidateEvaluated")


@dataclass(frozen=True)
class Condition:
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""


@dataclass(frozen=True)
class TriggerEvidence:
    """Why: the metric, its value, the bound it crossed, on which chunks, between which versions."""

    metric: str
    value: float
    bound: float
    chunks: tuple[int, ...]
    from_version: str
    to_version: str | None
    detail: str = ""  # where the evidence comes from when it is not live chunks

    def describe(self) -> str:
        if self.chunks:
            where = "on chunks [" + ",".join(str(c) for c in self.chunks) + "]"
        else:
            where = f"({self.detail})" if self.detail else "before any chunk"
        target = self.to_version or "none"
        return (
            f"{self.metric}={self.value:.4f} beyond bound {self.bound:.4f} {where}; "
            f"{self.from_version} -> {target}"
        )


Action = Literal[
    "none",
    "reject-and-rollback",
    "rollback",
    "promote-known-good",
    "recommend-retraining",
    "unavailable",
]
Effect = Literal["patch", "dry-run", "observe", "none"]
TRIGGER_REASONS = {
    "rejected": "RejectedVersion",
    "gate": "ReleaseGate",
    "candidate": "CandidateWorse",
    "parity": "ScoreParity",
    "rank_correlation": "RankCorrelation",
    "estimated_gap": "EstimatedGap",
    "realized_gap": "RealizedGap",
    "world_drift": "WorldDrift",
}


@dataclass(frozen=True)
class DecisionInput:
    policy: Policy
    live_version: str | None  # the pod template's modelguard.dev/model-version
    live_revision: int | None
    revisions: Mapping[int, str | None]  # every existing revision -> its model version
    evidence: Sequence[ChunkEvidence]  # of the live version, any order
    known_good: KnownGood | None
    rejected: Mapping[str, str]  # version -> reason
    now: datetime
    live_holdout: Mapping[str, float | None] | None = None  # registration metrics["reference"]
    known_good_holdout: Mapping[str, float | None] | None = None
    incident: Incident = field(default_factory=Incident)
    # An operator cleared this version's rejection: the release gate no longer applies to it.
    gate_waived: bool = False
    # What the spec cannot do at this chunk size (from `policy.resolve`), and how the
    # analysis chunks the live version (rows waiting for a chunk).
    problems: Sequence[PolicyProblem] = ()
    chunking: ChunkingStatus | None = None
    # The live version's verdict from when it was a candidate (judged on the baseline's
    # rows before it served); None when it never was one.
    candidate: CandidateVerdict | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    effect: Effect
    message: str
    conditions: tuple[Condition, ...]
    trigger: str | None = None
    evidence: TriggerEvidence | None = None
    from_version: str | None = None
    from_revision: int | None = None
    target_version: str | None = None
    target_revision: int | None = None
    reject_reason: str | None = None  # record the live version as rejected with this reason
    deferred: str | None = None  # why a due rollback is not acted on now
    healthy_chunks: int = 0
    last_estimate: Mapping[str, Any] | None = None

    @property
    def release(self) -> str:
        return f"{self.from_version}@{self.from_revision}"

    @property
    def wants_rollback(self) -> bool:
        return self.action in ("rollback", "reject-and-rollback") and self.deferred is None

"""The status conditions a decision reports, and the evidence-only judgements behind them.

Why a module of its own: `Degraded` and `DriftDetected` explain, they never trigger a
rollback by themselves (absolute bounds rolled back the *good* model; docs/design.md,
"Deciding"), so they are built apart from the trigger rules. `merge_conditions` turns them
into CR status entries whose `lastTransitionTime` only moves on a flip. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.core.evidence import ChunkEvidence
from monitor.core.times import iso
from monitor.decision.candidates import CandidateVerdict
from monitor.decision.policy import Policy, PolicyProblem
from monitor.decision.types import Condition
from monitor.memory.state import ChunkingStatus


def drift_condition(latest: ChunkEvidence | None) -> Condition:
    if latest is None:
        return Condition("DriftDetected", "Unknown", "AwaitingEvidence", "no chunk analysed yet")
    features = latest.drifted_features
    if features:
        return Condition(
            "DriftDetected",
            "True",
            "FeatureDrift",
            f"chunk {latest.chunk_index}: drift in {', '.join(features)}",
        )
    if latest.multivariate_alert:
        return Condition(
            "DriftDetected",
            "True",
            "MultivariateDrift",
            f"chunk {latest.chunk_index}: reconstruction error "
            f"{latest.multivariate_error} above {latest.multivariate_threshold}",
        )
    return Condition("DriftDetected", "False", "NoDrift", f"chunk {latest.chunk_index}: no drift")


def absolute_degradation(policy: Policy, latest: ChunkEvidence | None) -> tuple[bool, str, str]:
    if latest is None:
        return False, "", ""
    for metric, bounds in policy.estimated_bounds.items():
        est = latest.estimated.get(metric)
        if (
            est is not None
            and est.value is not None
            and bounds.lower is not None
            and est.value < bounds.lower
        ):
            return (
                True,
                "EstimateBelowBound",
                (
                    f"chunk {latest.chunk_index}: estimated {metric} {est.value:.4f} "
                    f"< {bounds.lower:.4f}"
                ),
            )
    realized = realized_degradation(policy, [latest])
    if realized is not None:
        return True, "RealizedBelowBound", f"chunk {latest.chunk_index}: {realized}"
    return False, "", ""


def realized_degradation(policy: Policy, chunks: Sequence[ChunkEvidence]) -> str | None:
    labelled = [c for c in chunks if c.labelled_rows >= policy.realized_gap_min_labelled_rows]
    if not labelled:
        return None
    latest = labelled[-1]
    for metric, bounds in policy.realized_bounds.items():
        value = latest.realized.get(metric)
        if value is not None and bounds.lower is not None and value < bounds.lower:
            return f"realized {metric} {value:.4f} < {bounds.lower:.4f}"
    return None


def build_conditions(
    ready: tuple[str, str, str],
    degraded: tuple[str, str, str] = ("Unknown", "AwaitingEvidence", ""),
    drift: Condition | None = None,
    rolled_back: tuple[str, str, str] = ("False", "NoRollback", ""),
    retrain: tuple[str, str, str] = ("False", "NotNeeded", ""),
    unavailable: tuple[str, str, str] = ("False", "TargetAvailable", ""),
    policy: tuple[str, str, str] = ("False", "PolicyUsable", ""),
    waiting: tuple[str, str, str] = ("False", "ChunksComplete", ""),
) -> tuple[Condition, ...]:
    drift = drift or Condition("DriftDetected", "Unknown", "AwaitingEvidence", "")
    rows = [
        ("Ready", ready),
        ("Degraded", degraded),
        ("RolledBack", rolled_back),
        ("RetrainingRecommended", retrain),
        ("RollbackUnavailable", unavailable),
        ("PolicyUnusable", policy),
        ("WaitingForData", waiting),
    ]
    made = [Condition(t, s, r, m) for t, (s, r, m) in rows]  # type: ignore[arg-type]
    return (made[0], made[1], drift, *made[2:])


def policy_condition(problems: Sequence[PolicyProblem]) -> tuple[str, str, str]:
    """`PolicyUnusable`: True with the first problem's reason and every problem's message."""
    if not problems:
        return ("False", "PolicyUsable", "every rule can fire at this chunk size")
    return ("True", problems[0].reason, "; ".join(p.message for p in problems))


def waiting_condition(
    chunking: ChunkingStatus | None, judged_chunks: int, pooling: Sequence[str] = ()
) -> tuple[str, str, str]:
    """`WaitingForData`: True while the live version has no chunk to judge yet; its message
    also says which gap rule pools small chunks and how many more rows it waits for."""
    if chunking is None:
        return ("Unknown", "NotAnalysedYet", "the analysis has not chunked this version yet")
    pending = f"{chunking.pending_rows} rows wait for a chunk, {chunking.rows_needed} more needed"
    if pooling:
        pending += "; " + "; ".join(pooling)
    if judged_chunks == 0:
        return ("True", "AwaitingCompleteChunk", f"no chunk to judge yet: {pending}")
    return ("False", "ChunksComplete", f"{judged_chunks} chunks judged; {pending}")


def merge_conditions(
    previous: Sequence[Mapping[str, Any]],
    new: Sequence[Condition],
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Status conditions: `lastTransitionTime` moves only when a condition's status flips."""
    before = {str(c.get("type")): c for c in previous}
    merged: list[dict[str, Any]] = []
    for cond in new:
        old = before.get(cond.type)
        flipped = old is None or old.get("status") != cond.status
        when = iso(now) if flipped or old is None else old.get("lastTransitionTime")
        entry: dict[str, Any] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message[:32000],
            "lastTransitionTime": when,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        merged.append(entry)
    return merged


def candidate_condition(verdicts: Sequence[CandidateVerdict]) -> Condition:
    """`CandidateEvaluated`: True once a candidate is declared; the reason says the worst
    verdict, the message every candidate's."""
    if not verdicts:
        return Condition("CandidateEvaluated", "False", "NoCandidates", "no candidate declared")
    found = {v.verdict for v in verdicts}
    if "Worse" in found:
        reason = "CandidateWorse"
    elif "Incompatible" in found:
        reason = "CandidateIncompatible"
    elif "Inconclusive" in found:
        reason = "Evaluating"
    else:
        reason = "AllDecided"
    message = "; ".join(f"{v.version}={v.verdict}: {v.evidence()}" for v in verdicts)
    return Condition("CandidateEvaluated", "True", reason, message[:1000])

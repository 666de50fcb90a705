"""The rollback decision: a pure function over plain data (no I/O, no clock: `now` is given).

Why this shape: every rule here was measured (DESIGN.md, "Deciding") and must be testable
exhaustively without a cluster. A release is judged against the last known-good version on
the same live rows (shadow fields of `ChunkEvidence`), never against absolute bounds:
absolute estimates and drift rolled back the *good* model on 3-5 of 5 release dates, so they
only explain (`Degraded`, `DriftDetected`, `RetrainingRecommended`) unless the spec opts in
with `rollbackOnWorldDrift`.

Order of judgement for a live version that is not the known-good one ("on probation"):
already rejected -> release gate (hold-out shortfall) -> score parity -> rank correlation ->
cumulative estimated gap -> cumulative realized gap -> (opt-in) world drift. The first rule
that fires is the trigger; guards (incident, cooldown, target availability, mode) then decide
whether and how it is acted on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from monitor.evidence import ChunkEvidence
from monitor.policy import Policy

Action = Literal[
    "none",
    "reject-and-rollback",
    "rollback",
    "promote-known-good",
    "recommend-retraining",
    "unavailable",
]
Effect = Literal["patch", "dry-run", "observe", "none"]
CONDITION_TYPES = (
    "Ready",
    "Degraded",
    "DriftDetected",
    "RolledBack",
    "RetrainingRecommended",
    "RollbackUnavailable",
)
TRIGGER_REASONS = {
    "rejected": "RejectedVersion",
    "gate": "ReleaseGate",
    "parity": "ScoreParity",
    "rank_correlation": "RankCorrelation",
    "estimated_gap": "EstimatedGap",
    "realized_gap": "RealizedGap",
    "world_drift": "WorldDrift",
}
# Triggers judged once and for all (not noisy evidence): a cooldown does not hold them back.
_DETERMINISTIC_TRIGGERS = {"rejected", "gate"}


@dataclass(frozen=True)
class KnownGood:
    version: str
    revision: int | None = None
    since: str | None = None


@dataclass(frozen=True)
class Incident:
    """The operator's durable memory about past actions on this target."""

    last_rollback_time: datetime | None = None
    handled_release: str | None = None  # "version@revision" already acted on once
    last_rollback: Mapping[str, Any] | None = None  # as in status.lastRollback


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

    def describe(self) -> str:
        chunks = ",".join(str(c) for c in self.chunks) or "-"
        target = self.to_version or "none"
        return (
            f"{self.metric}={self.value:.4f} beyond bound {self.bound:.4f} on chunks [{chunks}]; "
            f"{self.from_version} -> {target}"
        )


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


def decide(inp: DecisionInput) -> Decision:
    """Judge the live release and say what to do; see the module docstring for the order."""
    policy = inp.policy
    if inp.live_version is None:
        msg = "the Deployment's pod template declares no modelguard.dev/model-version"
        return Decision("none", "none", msg, _conditions(ready=("False", "VersionUnknown", msg)))
    valid = sorted(
        (c for c in inp.evidence if c.rows >= policy.min_rows_per_chunk),
        key=lambda c: c.chunk_index,
    )
    latest = valid[-1] if valid else None
    drift = _drift_condition(latest)
    degraded, degraded_reason, degraded_msg = _absolute_degradation(policy, latest)
    base = _Base(inp, valid, drift, degraded, degraded_reason, degraded_msg)
    kg = inp.known_good
    if kg is not None and kg.version == inp.live_version:
        return _judge_known_good(base)
    trigger = _find_trigger(inp, valid, degraded, drift.status == "True")
    if trigger is None:
        return _judge_healthy_probation(base)
    return _judge_breach(base, *trigger)


@dataclass(frozen=True)
class _Base:
    inp: DecisionInput
    valid: list[ChunkEvidence]
    drift: Condition
    degraded: bool
    degraded_reason: str
    degraded_msg: str

    def degraded_condition(self) -> tuple[str, str, str]:
        if not self.valid:
            return ("Unknown", "AwaitingEvidence", "no chunk with enough rows yet")
        if self.degraded:
            return ("True", self.degraded_reason, self.degraded_msg)
        return ("False", "WithinBounds", "estimates within the spec's absolute bounds")

    def rolled_back_condition(self) -> tuple[str, str, str]:
        last = self.inp.incident.last_rollback
        if last and last.get("toVersion") == self.inp.live_version and not last.get("dryRun"):
            reason = TRIGGER_REASONS.get(str(last.get("trigger")), "RolledBack")
            return ("True", reason, str(last.get("reason", "")))
        return ("False", "NoRollback", "the live version is not the result of a rollback")

    def last_estimate(self) -> dict[str, Any] | None:
        if not self.valid:
            return None
        chunk = self.valid[-1]
        est = chunk.estimated.get("roc_auc")
        if est is None or est.value is None:
            return None
        return {
            "metric": "roc_auc",
            "value": est.value,
            "lower": est.lower,
            "upper": est.upper,
            "chunk": chunk.chunk_index,
        }


def _judge_known_good(base: _Base) -> Decision:
    inp, policy = base.inp, base.inp.policy
    ready = ("True", "KnownGood", f"{inp.live_version} is the known-good version")
    retrain = ("False", "NotNeeded", "the known-good version holds up on realized labels")
    action: Action = "none"
    message = f"{inp.live_version} is known-good; nothing to do"
    degraded_realized = _realized_degradation(policy, base.valid)
    if degraded_realized is not None:
        action = "recommend-retraining"
        message = (
            f"known-good {inp.live_version} degrades on realized labels ({degraded_realized}); "
            f"drift: {base.drift.message}. Retrain: a rollback would not help"
        )
        retrain = ("True", "KnownGoodDegrading", message)
    effect: Effect = "observe" if policy.mode == "off" else "none"
    return Decision(
        action,
        effect,
        message,
        _conditions(
            ready=ready,
            degraded=base.degraded_condition(),
            drift=base.drift,
            rolled_back=base.rolled_back_condition(),
            retrain=retrain,
        ),
        from_version=inp.live_version,
        from_revision=inp.live_revision,
        healthy_chunks=len(base.valid),
        last_estimate=base.last_estimate(),
    )


def _judge_healthy_probation(base: _Base) -> Decision:
    inp, policy = base.inp, base.inp.policy
    healthy = len(base.valid)
    promote = healthy >= policy.probation_chunks
    if promote:
        action: Action = "promote-known-good"
        message = f"{inp.live_version} passed probation ({healthy} healthy chunks): known-good"
        ready = ("True", "Promoted", message)
    else:
        action = "none"
        message = (
            f"{inp.live_version} on probation: {healthy}/{policy.probation_chunks} healthy chunks"
        )
        ready = ("True", "OnProbation", message)
    effect: Effect = "observe" if policy.mode == "off" else "none"
    return Decision(
        action,
        effect,
        message,
        _conditions(
            ready=ready,
            degraded=base.degraded_condition(),
            drift=base.drift,
            rolled_back=base.rolled_back_condition(),
        ),
        from_version=inp.live_version,
        from_revision=inp.live_revision,
        target_version=inp.live_version if promote else None,
        target_revision=inp.live_revision if promote else None,
        healthy_chunks=healthy,
        last_estimate=base.last_estimate(),
    )


def _judge_breach(base: _Base, trigger: str, evidence: TriggerEvidence) -> Decision:
    inp, policy = base.inp, base.inp.policy
    reason = TRIGGER_REASONS[trigger]
    target_version, target_revision, unavailable = _rollback_target(inp)
    evidence = replace(evidence, to_version=target_version)
    message = f"{reason}: {evidence.describe()}"
    reject_reason = None if trigger == "rejected" else f"{reason}: {evidence.describe()}"
    ready = ("False", reason, message)
    degraded = ("True", reason, message)
    common: dict[str, Any] = dict(
        trigger=trigger,
        evidence=evidence,
        from_version=inp.live_version,
        from_revision=inp.live_revision,
        reject_reason=reject_reason,
        healthy_chunks=0,
        last_estimate=base.last_estimate(),
    )
    if unavailable is not None:
        msg = f"{message}; cannot roll back: {unavailable[1]}"
        effect: Effect = "observe" if policy.mode == "off" else "none"
        return Decision(
            "unavailable",
            effect,
            msg,
            _conditions(
                ready=ready,
                degraded=degraded,
                drift=base.drift,
                rolled_back=base.rolled_back_condition(),
                unavailable=("True", unavailable[0], unavailable[1]),
            ),
            **common,
        )
    action: Action = "reject-and-rollback" if trigger == "gate" else "rollback"
    deferred = _guard(inp, trigger)
    effect = {"auto": "patch", "dryRun": "dry-run", "off": "observe"}[policy.mode]  # type: ignore[assignment]
    if deferred is not None:
        effect = "none"
        rolled_back = base.rolled_back_condition()
        message = f"{message}; not acted on: {deferred}"
    elif effect == "patch":
        rolled_back = ("True", reason, message)
    elif effect == "dry-run":
        rolled_back = (
            "False",
            "DryRun",
            f"dryRun: would roll back to revision {target_revision}. {message}",
        )
    else:
        rolled_back = ("False", "ModeOff", f"mode off: would roll back. {message}")
    return Decision(
        action,
        effect,
        message,
        _conditions(ready=ready, degraded=degraded, drift=base.drift, rolled_back=rolled_back),
        target_version=target_version,
        target_revision=target_revision,
        deferred=deferred,
        **common,
    )


def _guard(inp: DecisionInput, trigger: str) -> str | None:
    """One rollback per incident (release = version@revision); cooldown for noisy evidence."""
    release = f"{inp.live_version}@{inp.live_revision}"
    if inp.incident.handled_release == release:
        return f"IncidentAlreadyHandled: {release} was already acted on once"
    last = inp.incident.last_rollback_time
    if trigger not in _DETERMINISTIC_TRIGGERS and last is not None:
        until = last + inp.policy.cooldown
        if inp.now < until:
            return f"CooldownActive: next rollback allowed at {until.isoformat()}"
    return None


def _rollback_target(
    inp: DecisionInput,
) -> tuple[str | None, int | None, tuple[str, str] | None]:
    """The newest revision carrying the known-good version; never a rejected or unknown one."""
    kg = inp.known_good
    if kg is None:
        return None, None, ("NoKnownGood", "no version has passed probation yet")
    if kg.version in inp.rejected:
        return kg.version, None, ("KnownGoodRejected", f"known-good {kg.version} is rejected")
    candidates = [n for n, v in inp.revisions.items() if v == kg.version]
    if not candidates:
        return (
            kg.version,
            None,
            (
                "KnownGoodRevisionMissing",
                f"no ReplicaSet of the Deployment carries known-good {kg.version} "
                "(revision history limit?)",
            ),
        )
    return kg.version, max(candidates), None


def _find_trigger(
    inp: DecisionInput, valid: list[ChunkEvidence], degraded: bool, drifting: bool
) -> tuple[str, TriggerEvidence] | None:
    version = inp.live_version or ""
    if version in inp.rejected:
        ev = TriggerEvidence("rejected", 1.0, 0.0, (), version, None)
        return "rejected", replace(ev, metric=f"rejected ({inp.rejected[version]})")
    gate = _gate(inp)
    if gate is not None:
        return "gate", gate
    kg = inp.known_good.version if inp.known_good else None
    comparable = [c for c in valid if kg is not None and c.known_good_version == kg]
    policy = inp.policy
    rules: list[tuple[str, Callable[[], TriggerEvidence | None]]] = [
        ("parity", lambda: _parity(policy, valid, version)),
        ("rank_correlation", lambda: _rank(policy, comparable, version)),
        ("estimated_gap", lambda: _estimated_gap(policy, comparable, version)),
        ("realized_gap", lambda: _realized_gap(policy, comparable, version)),
    ]
    for name, rule in rules:
        found = rule()
        if found is not None:
            return name, found
    if policy.rollback_on_world_drift and degraded and drifting and valid:
        est = valid[-1].estimated.get("roc_auc")
        bound = policy.estimated_bounds.get("roc_auc")
        value = est.value if est and est.value is not None else float("nan")
        lower = bound.lower if bound and bound.lower is not None else float("nan")
        return "world_drift", TriggerEvidence(
            "estimated_roc_auc_under_drift", value, lower, (valid[-1].chunk_index,), version, None
        )
    return None


def _gate(inp: DecisionInput) -> TriggerEvidence | None:
    if inp.gate_waived or inp.known_good is None:
        return None
    if inp.live_holdout is None or inp.known_good_holdout is None:
        return None
    metric = inp.policy.gate_metric
    live, kg = inp.live_holdout.get(metric), inp.known_good_holdout.get(metric)
    if live is None or kg is None:
        return None
    shortfall = kg - live
    if shortfall > inp.policy.gate_max_shortfall:
        return TriggerEvidence(
            f"holdout_{metric}_shortfall",
            shortfall,
            inp.policy.gate_max_shortfall,
            (),
            inp.live_version or "",
            None,
        )
    return None


def _first_run(flags: Sequence[tuple[int, float, bool]], k: int) -> tuple[list[int], float] | None:
    """First run of k consecutive breaching chunks: (chunk indices, value at the run's end)."""
    run: list[int] = []
    for index, value, breach in flags:
        run = [*run, index] if breach else []
        if len(run) >= k:
            return run[-k:], value
    return None


def _parity(policy: Policy, chunks: list[ChunkEvidence], version: str) -> TriggerEvidence | None:
    flags = [
        (
            c.chunk_index,
            c.parity_violation_ratio,
            c.parity_violation_ratio > policy.parity_max_violation_ratio,
        )
        for c in chunks
        if c.parity_violation_ratio is not None
    ]
    run = _first_run(flags, policy.parity_chunks)
    if run is None:
        return None
    return TriggerEvidence(
        "score_parity_violation_ratio",
        run[1],
        policy.parity_max_violation_ratio,
        tuple(run[0]),
        version,
        None,
    )


def _rank(policy: Policy, chunks: list[ChunkEvidence], version: str) -> TriggerEvidence | None:
    flags = [
        (c.chunk_index, c.rank_correlation, c.rank_correlation < c.rank_correlation_floor)
        for c in chunks
        if c.rank_correlation is not None and c.rank_correlation_floor is not None
    ]
    run = _first_run(flags, policy.rank_chunks)
    if run is None:
        return None
    floor = next(c.rank_correlation_floor for c in chunks if c.chunk_index == run[0][-1])
    return TriggerEvidence(
        "rank_correlation", run[1], float(floor or 0.0), tuple(run[0]), version, None
    )


def _estimated_gap(
    policy: Policy, chunks: list[ChunkEvidence], version: str
) -> TriggerEvidence | None:
    metric = policy.estimated_gap_metric
    pairs: list[tuple[int, float, float]] = []
    for c in chunks:
        if policy.estimated_gap_same_learner_only and c.same_learner is not True:
            continue  # CBPE is biased in opposite directions across learners
        live, kg = c.estimated.get(metric), c.known_good_estimated.get(metric)
        if live is None or kg is None or live.value is None or kg.value is None:
            continue
        pairs.append((c.chunk_index, live.value - kg.value, float(c.rows)))
    return _cumulative_rule(
        pairs,
        policy.estimated_gap_min,
        policy.estimated_gap_chunks,
        f"cumulative_estimated_{metric}_gap",
        version,
    )


def _realized_gap(
    policy: Policy, chunks: list[ChunkEvidence], version: str
) -> TriggerEvidence | None:
    metric = policy.realized_gap_metric
    pairs: list[tuple[int, float, float]] = []
    for c in chunks:
        live, kg = c.realized.get(metric), c.known_good_realized.get(metric)
        if c.labelled_rows < policy.realized_gap_min_labelled_rows or live is None or kg is None:
            continue
        pairs.append((c.chunk_index, live - kg, float(c.labelled_rows)))
    return _cumulative_rule(
        pairs,
        policy.realized_gap_min,
        policy.realized_gap_chunks,
        f"cumulative_realized_{metric}_gap",
        version,
    )


def _cumulative_rule(
    pairs: list[tuple[int, float, float]], bound: float, k: int, metric: str, version: str
) -> TriggerEvidence | None:
    """Row-weighted mean gap since release, checked after each chunk; K consecutive breaches."""
    flags: list[tuple[int, float, bool]] = []
    total = weight = 0.0
    for index, gap, rows in pairs:
        total += gap * rows
        weight += rows
        cumulative = total / weight
        flags.append((index, cumulative, cumulative < bound))
    run = _first_run(flags, k)
    if run is None:
        return None
    return TriggerEvidence(metric, run[1], bound, tuple(run[0]), version, None)


def _drift_condition(latest: ChunkEvidence | None) -> Condition:
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


def _absolute_degradation(policy: Policy, latest: ChunkEvidence | None) -> tuple[bool, str, str]:
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
    realized = _realized_degradation(policy, [latest])
    if realized is not None:
        return True, "RealizedBelowBound", f"chunk {latest.chunk_index}: {realized}"
    return False, "", ""


def _realized_degradation(policy: Policy, chunks: Sequence[ChunkEvidence]) -> str | None:
    labelled = [c for c in chunks if c.labelled_rows >= policy.realized_gap_min_labelled_rows]
    if not labelled:
        return None
    latest = labelled[-1]
    for metric, bounds in policy.realized_bounds.items():
        value = latest.realized.get(metric)
        if value is not None and bounds.lower is not None and value < bounds.lower:
            return f"realized {metric} {value:.4f} < {bounds.lower:.4f}"
    return None


def _conditions(
    ready: tuple[str, str, str],
    degraded: tuple[str, str, str] = ("Unknown", "AwaitingEvidence", ""),
    drift: Condition | None = None,
    rolled_back: tuple[str, str, str] = ("False", "NoRollback", ""),
    retrain: tuple[str, str, str] = ("False", "NotNeeded", ""),
    unavailable: tuple[str, str, str] = ("False", "TargetAvailable", ""),
) -> tuple[Condition, ...]:
    drift = drift or Condition("DriftDetected", "Unknown", "AwaitingEvidence", "")
    rows = [
        ("Ready", ready),
        ("Degraded", degraded),
        ("RolledBack", rolled_back),
        ("RetrainingRecommended", retrain),
        ("RollbackUnavailable", unavailable),
    ]
    made = [Condition(t, s, r, m) for t, (s, r, m) in rows]  # type: ignore[arg-type]
    return (made[0], made[1], drift, *made[2:])


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
        when = now.isoformat().replace("+00:00", "Z") if flipped else old.get("lastTransitionTime")  # type: ignore[union-attr]
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

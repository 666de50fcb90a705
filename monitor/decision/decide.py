"""The rollback decision: a pure function over plain data (no I/O, no clock: `now` is given).

Why this shape: every rule here was measured (docs/design.md, "Deciding") and must be testable
exhaustively without a cluster. A release is judged against the last known-good version on
the same live rows (shadow fields of `ChunkEvidence`), never against absolute bounds:
input drift would have rolled back the *good* model on 4 of 5 release dates and a single
chunk's absolute estimate on 3, while an absolute bound held for two chunks caught few bad
releases and late (bench/results/policy_eval.json, `make bench-policy`). So they only
explain (`Degraded`, `DriftDetected`, `RetrainingRecommended`) unless the spec opts in with
`rollbackOnWorldDrift`.

Order of judgement for a live version that is not the known-good one ("on probation"):
already rejected -> release gate (hold-out shortfall) -> score parity -> rank correlation ->
cumulative estimated gap -> cumulative realized gap -> (opt-in) world drift. The first rule
that fires is the trigger; guards (incident, cooldown, target availability, mode) then decide
whether and how it is acted on.

The trigger rules live in `rules.py`, the condition building in `conditions.py`, the
inputs and the verdict in `types.py`; this module holds the flow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from monitor.core.evidence import ChunkEvidence
from monitor.core.times import iso
from monitor.decision.conditions import (
    absolute_degradation,
    build_conditions,
    drift_condition,
    policy_condition,
    realized_degradation,
    waiting_condition,
)
from monitor.decision.rules import find_trigger, gap_waits, judged_units
from monitor.decision.types import (
    TRIGGER_REASONS,
    Action,
    Condition,
    Decision,
    DecisionInput,
    Effect,
    TriggerEvidence,
)

# Triggers judged once and for all (not noisy evidence): a cooldown does not hold them back.
_DETERMINISTIC_TRIGGERS = {"rejected", "gate", "candidate"}


def decide(inp: DecisionInput) -> Decision:
    """Judge the live release and say what to do; see the module docstring for the order."""
    policy = inp.policy
    if inp.live_version is None:
        msg = "the Deployment's pod template declares no modelguard.dev/model-version"
        return Decision(
            "none",
            "none",
            msg,
            build_conditions(
                ready=("False", "VersionUnknown", msg), policy=policy_condition(inp.problems)
            ),
        )
    # The rules judged chunk by chunk (parity, rank correlation, bounds, drift) need a full
    # chunk of enough rows; the gap rules pool smaller chunks (`rules.find_trigger`).
    full = sorted((c for c in inp.evidence if not c.partial), key=lambda c: c.chunk_index)
    valid = [c for c in full if c.rows >= policy.min_rows_per_chunk]
    latest = valid[-1] if valid else None
    drift = drift_condition(latest)
    degraded, degraded_reason, degraded_msg = absolute_degradation(policy, latest)
    base = _Base(
        inp, valid, drift, degraded, degraded_reason, degraded_msg, judged_units(policy, full)
    )
    kg = inp.known_good
    if kg is not None and kg.version == inp.live_version:
        return _judge_known_good(base)
    every = sorted(inp.evidence, key=lambda c: c.chunk_index)  # the gap rules pool them all
    trigger = find_trigger(inp, valid, degraded, drift.status == "True", every)
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
    # Chunks judged so far for probation: full chunks of enough rows, smaller ones pooled.
    judged: int = 0

    def extra(self) -> dict[str, tuple[str, str, str]]:
        """The conditions every verdict carries: the policy's problems, data waiting."""
        return {
            "policy": policy_condition(self.inp.problems),
            "waiting": waiting_condition(
                self.inp.chunking, self.judged, gap_waits(self.inp, self.inp.evidence)
            ),
        }

    def unavailable_condition(self) -> tuple[str, str, str]:
        """On probation without a known-good version, a bad release could not be undone."""
        if self.inp.known_good is None:
            return (
                "True",
                "NoKnownGood",
                "no known-good version to roll back to: none has passed probation and none "
                "is declared (spec.knownGood or `python -m monitor known-good set`)",
            )
        return ("False", "TargetAvailable", f"known-good {self.inp.known_good.version}")

    def degraded_condition(self) -> tuple[str, str, str]:
        if not self.valid:
            return ("Unknown", "AwaitingEvidence", "no chunk with enough rows yet")
        if self.degraded:
            return ("True", self.degraded_reason, self.degraded_msg)
        return ("False", "WithinBounds", "estimates within the spec's absolute bounds")

    def rolled_back_condition(self) -> tuple[str, str, str]:
        last = self.inp.incident.last_rollback
        if last and last.to_version == self.inp.live_version and not last.dry_run:
            return ("True", TRIGGER_REASONS.get(str(last.trigger), "RolledBack"), last.reason)
        return ("False", "NoRollback", "the live version is not the result of a rollback")

    def last_estimate(self) -> dict[str, Any] | None:
        if not self.valid:
            return None
        chunk = self.valid[-1]
        est = chunk.estimated.get("roc_auc")
        if est is None or est.value is None:
            return None
        out: dict[str, Any] = {
            "metric": "roc_auc",
            "value": est.value,
            "lower": est.lower,
            "upper": est.upper,
            "chunk": chunk.chunk_index,
        }
        if chunk.period_start:  # a chunk by period is named with its range too
            out["periodStart"], out["periodEnd"] = chunk.period_start, chunk.period_end
        return out


def _judge_known_good(base: _Base) -> Decision:
    inp, policy = base.inp, base.inp.policy
    ready = ("True", "KnownGood", f"{inp.live_version} is the known-good version")
    retrain = ("False", "NotNeeded", "the known-good version holds up on realized labels")
    action: Action = "none"
    message = f"{inp.live_version} is known-good; nothing to do"
    degraded_realized = realized_degradation(policy, base.valid)
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
        build_conditions(
            ready=ready,
            degraded=base.degraded_condition(),
            drift=base.drift,
            rolled_back=base.rolled_back_condition(),
            retrain=retrain,
            **base.extra(),
        ),
        from_version=inp.live_version,
        from_revision=inp.live_revision,
        healthy_chunks=base.judged,
        last_estimate=base.last_estimate(),
    )


def _judge_healthy_probation(base: _Base) -> Decision:
    inp, policy = base.inp, base.inp.policy
    healthy = base.judged
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
        build_conditions(
            ready=ready,
            degraded=base.degraded_condition(),
            drift=base.drift,
            rolled_back=base.rolled_back_condition(),
            unavailable=base.unavailable_condition(),
            **base.extra(),
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
            build_conditions(
                ready=ready,
                degraded=degraded,
                drift=base.drift,
                rolled_back=base.rolled_back_condition(),
                unavailable=("True", unavailable[0], unavailable[1]),
                **base.extra(),
            ),
            **common,
        )
    action: Action = "reject-and-rollback" if trigger in ("gate", "candidate") else "rollback"
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
        build_conditions(
            ready=ready,
            degraded=degraded,
            drift=base.drift,
            rolled_back=rolled_back,
            **base.extra(),
        ),
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
            return f"CooldownActive: next rollback allowed at {iso(until)}"
    return None


def _rollback_target(
    inp: DecisionInput,
) -> tuple[str | None, int | None, tuple[str, str] | None]:
    """The newest revision carrying the known-good version; never a rejected or unknown one."""
    kg = inp.known_good
    if kg is None:
        return None, None, ("NoKnownGood", "no version has passed probation or is declared")
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

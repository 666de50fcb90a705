"""The pure decision over plain data: every rule, guard and mode of docs/design.md's "Deciding"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.core.evidence import ChunkEvidence
from monitor.decision.conditions import merge_conditions
from monitor.decision.decide import decide
from monitor.decision.policy import Policy, parse_policy
from monitor.decision.types import CONDITION_TYPES, Decision, DecisionInput
from monitor.memory.state import ChunkingStatus, Incident, KnownGood, RollbackRecord
from tests.support.kube import chunk

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
GOOD, BAD = "good-1", "bad-2"
REVISIONS = {1: GOOD, 2: "older-0", 3: GOOD, 4: BAD}  # revision 3 re-deployed good-1


def policy(**spec: Any) -> Policy:
    return parse_policy(
        {"model": "rain_forecast", "targetRef": {"name": "predictor"}, "mode": "auto", **spec}
    )


def inp(evidence: list[ChunkEvidence], **kw: Any) -> DecisionInput:
    base: dict[str, Any] = dict(
        policy=policy(),
        live_version=BAD,
        live_revision=4,
        revisions=REVISIONS,
        evidence=evidence,
        known_good=KnownGood(GOOD, 3),
        rejected={},
        now=NOW,
        live_holdout={"roc_auc": 0.84},
        known_good_holdout={"roc_auc": 0.845},
    )
    base.update(kw)
    return DecisionInput(**base)


def cond(decision: Decision, kind: str) -> tuple[str, str]:
    found = next(c for c in decision.conditions if c.type == kind)
    return found.status, found.reason


def healthy(n: int, version: str = BAD, **kw: Any) -> list[ChunkEvidence]:
    return [chunk(version, i, **kw) for i in range(n)]


def test_every_decision_carries_all_conditions() -> None:
    for decision in (decide(inp([])), decide(inp(healthy(6))), decide(inp([], live_version=None))):
        assert tuple(c.type for c in decision.conditions) == (
            "Ready",
            "Degraded",
            "DriftDetected",
            "RolledBack",
            "RetrainingRecommended",
            "RollbackUnavailable",
            "PolicyUnusable",
            "WaitingForData",
        )
        assert set(CONDITION_TYPES) == {c.type for c in decision.conditions}


def test_template_without_version_is_not_judged() -> None:
    d = decide(inp(healthy(6, parity=0.5), live_version=None))
    assert d.action == "none"
    assert cond(d, "Ready") == ("False", "VersionUnknown")


def test_probation_counts_healthy_chunks_then_promotes() -> None:
    d = decide(inp(healthy(5)))
    assert (d.action, cond(d, "Ready")) == ("none", ("True", "OnProbation"))
    assert "5/6" in d.message
    d = decide(inp(healthy(6)))
    assert d.action == "promote-known-good"
    assert (d.target_version, d.target_revision) == (BAD, 4)
    assert cond(d, "Ready") == ("True", "Promoted")


def test_small_chunks_pool_for_probation_but_never_judge_a_chunk_alone() -> None:
    # 100-row chunks under minRowsPerChunk 300: no per-chunk rule reads one (a parity of 0.9
    # on 100 rows rolls nothing back), probation counts them pooled three by three.
    small = [chunk(BAD, i, rows=100, parity=0.9) for i in range(10)]
    d = decide(inp(small))
    assert d.action == "none"
    assert d.healthy_chunks == 3
    assert cond(d, "Degraded") == ("Unknown", "AwaitingEvidence")


def test_partial_chunks_are_left_out_of_per_chunk_rules() -> None:
    chunks = [*healthy(5), replace(chunk(BAD, 5, parity=0.9), partial=True)]
    d = decide(inp(chunks))
    assert d.action == "none"
    assert d.healthy_chunks == 5


def test_the_last_estimate_of_a_period_chunk_carries_its_range() -> None:
    chunks = [
        replace(c, period_start=f"2023-0{c.chunk_index + 1}-01T00:00:00Z", period_end="x")
        for c in healthy(3)
    ]
    last = decide(inp(chunks)).last_estimate
    assert last is not None
    assert (last["chunk"], last["periodStart"]) == (2, "2023-03-01T00:00:00Z")
    assert "periodStart" not in (decide(inp(healthy(3))).last_estimate or {})


def test_waiting_names_the_gap_rule_short_of_rows() -> None:
    small = [
        chunk(BAD, i, rows=100, labelled_rows=40, realized=0.8, known_good_realized=0.8)
        for i in range(4)
    ]
    status = ChunkingStatus("rows", 500, None, 500, 0.025, 4000)
    d = decide(inp(small, chunking=status))
    waiting = next(c for c in d.conditions if c.type == "WaitingForData")
    # estimated: 300 rows pooled from chunks 0-2, chunk 3 waits for 200 more; realized:
    # 4 x 40 labelled rows of the 200 the rule needs, 40 more.
    assert "estimated gap pools chunk 3 (100 rows), waits for 200 more rows" in waiting.message
    assert "realized gap pools chunks 0-3 (400 rows), waits for 40 more labelled rows" in (
        waiting.message
    )


def test_equivalent_retrain_under_world_drift_is_promoted_not_rolled_back() -> None:
    # The world drifts: every feature moves and the absolute estimate falls below 0.70, but
    # the known-good scored on the same rows falls just as much (gap -0.002).
    chunks = healthy(6, estimated=0.650, known_good_estimated=0.652, drifted=("temp", "dewp"))
    d = decide(inp(chunks))
    assert d.action == "promote-known-good"
    assert cond(d, "DriftDetected") == ("True", "FeatureDrift")
    assert cond(d, "Degraded") == ("True", "EstimateBelowBound")
    assert cond(d, "RolledBack") == ("False", "NoRollback")


def test_world_drift_rolls_back_only_when_the_spec_asks() -> None:
    chunks = healthy(2, estimated=0.65, known_good_estimated=0.66, drifted=("temp",))
    assert decide(inp(chunks)).action == "none"
    d = decide(inp(chunks, policy=policy(rollbackOnWorldDrift=True)))
    assert (d.action, d.trigger, d.target_revision) == ("rollback", "world_drift", 3)


def test_release_gate_rejects_before_any_chunk() -> None:
    d = decide(inp([], live_holdout={"roc_auc": 0.80}, known_good_holdout={"roc_auc": 0.845}))
    assert (d.action, d.trigger, d.effect) == ("reject-and-rollback", "gate", "patch")
    assert (d.target_version, d.target_revision) == (GOOD, 3)  # newest revision of good-1
    assert d.reject_reason is not None and d.reject_reason.startswith("ReleaseGate")
    assert d.evidence is not None and d.evidence.value == pytest.approx(0.045)
    assert cond(d, "RolledBack") == ("True", "ReleaseGate")
    assert cond(d, "Ready") == ("False", "ReleaseGate")


def test_release_gate_tolerates_a_small_shortfall_and_missing_metrics() -> None:
    assert decide(inp([], live_holdout={"roc_auc": 0.83})).action == "none"
    assert decide(inp([], live_holdout=None)).action == "none"
    assert decide(inp([], known_good_holdout={"roc_auc": None})).action == "none"


@pytest.mark.parametrize(
    ("ratio", "fires"), [(0.0101, True), (0.5, True), (0.01, False), (0.0, False)]
)
def test_score_parity_fires_on_one_chunk(ratio: float, fires: bool) -> None:
    d = decide(inp([chunk(BAD, 0, parity=ratio)]))
    assert (d.trigger == "parity") is fires
    if fires:
        assert d.action == "rollback" and d.evidence is not None
        assert d.evidence.chunks == (0,) and d.evidence.bound == 0.01


@pytest.mark.parametrize(
    ("ranks", "fires", "chunks"),
    [
        ([0.7, 0.7], False, None),
        ([0.7, 0.7, 0.7], True, (0, 1, 2)),
        ([0.7, 0.7, 0.9, 0.7, 0.7], False, None),
        ([0.9, 0.7, 0.7, 0.7, 0.9], True, (1, 2, 3)),
    ],
)
def test_rank_correlation_needs_k_consecutive_chunks(
    ranks: list[float], fires: bool, chunks: tuple[int, ...] | None
) -> None:
    d = decide(inp([chunk(BAD, i, rank=r) for i, r in enumerate(ranks)]))
    assert (d.trigger == "rank_correlation") is fires
    if fires:
        assert d.evidence is not None and d.evidence.chunks == chunks
        assert d.evidence.bound == 0.80


def test_estimated_gap_is_cumulative_since_release() -> None:
    # Chunk 0 alone is -0.10 but chunk 1 is +0.06: the cumulative gap (-0.02) does not breach.
    recovering = [chunk(BAD, 0, estimated=0.75), chunk(BAD, 1, estimated=0.91)]
    assert decide(inp(recovering)).action == "none"
    bad = [chunk(BAD, i, estimated=0.74) for i in range(2)]
    d = decide(inp(bad))
    assert (d.action, d.trigger) == ("rollback", "estimated_gap")
    assert d.evidence is not None and d.evidence.value == pytest.approx(-0.11)
    assert d.evidence.chunks == (0, 1)
    assert "cumulative_estimated_roc_auc_gap" in d.message and "bad-2 -> good-1" in d.message
    assert decide(inp(bad[:1])).action == "none"  # K=2


def test_estimated_gap_ignores_other_learners_and_other_known_goods() -> None:
    other_learner = [chunk(BAD, i, estimated=0.70, same_learner=False) for i in range(3)]
    assert decide(inp(other_learner)).action == "none"
    assert (
        decide(
            inp(
                other_learner,
                policy=policy(rollbackRules={"estimatedGap": {"sameLearnerOnly": False}}),
            )
        ).trigger
        == "estimated_gap"
    )
    stale = [chunk(BAD, i, estimated=0.70, known_good_version="older-0") for i in range(3)]
    assert decide(inp(stale)).action == "none"


def test_realized_gap_waits_for_labels() -> None:
    few = [
        chunk(BAD, i, realized=0.70, known_good_realized=0.80, labelled_rows=150) for i in range(3)
    ]
    assert decide(inp(few)).action == "none"
    enough = [replace(c, labelled_rows=300) for c in few]
    d = decide(inp(enough))
    assert (d.trigger, d.evidence and d.evidence.chunks) == ("realized_gap", (0, 1))


def test_rejected_version_redeployed_is_rolled_back_again_despite_cooldown() -> None:
    d = decide(
        inp(
            healthy(6),
            rejected={BAD: "ReleaseGate"},
            live_revision=7,
            revisions={**REVISIONS, 7: BAD},
            incident=Incident(
                last_rollback_time=NOW - timedelta(minutes=1), handled_release=f"{BAD}@4"
            ),
        )
    )
    assert (d.action, d.trigger, d.deferred, d.target_revision) == ("rollback", "rejected", None, 3)
    assert d.reject_reason is None  # already recorded


def test_rule_order_rejected_then_gate_then_parity() -> None:
    chunks = [chunk(BAD, 0, parity=0.5)]
    assert (
        decide(inp(chunks, rejected={BAD: "x"}, live_holdout={"roc_auc": 0.5})).trigger
        == "rejected"
    )
    assert decide(inp(chunks, live_holdout={"roc_auc": 0.5})).trigger == "gate"
    assert decide(inp(chunks)).trigger == "parity"


def test_cooldown_defers_evidence_rollbacks() -> None:
    chunks = [chunk(BAD, 0, parity=0.5)]
    recent = Incident(last_rollback_time=NOW - timedelta(minutes=10))
    d = decide(inp(chunks, incident=recent))
    assert (d.action, d.effect) == ("rollback", "none")
    assert d.deferred is not None and d.deferred.startswith("CooldownActive")
    assert not d.wants_rollback
    old = Incident(last_rollback_time=NOW - timedelta(minutes=31))
    assert decide(inp(chunks, incident=old)).wants_rollback


def test_one_rollback_per_incident() -> None:
    d = decide(inp([chunk(BAD, 0, parity=0.5)], incident=Incident(handled_release=f"{BAD}@4")))
    assert d.deferred is not None and d.deferred.startswith("IncidentAlreadyHandled")
    assert d.effect == "none"


@pytest.mark.parametrize(
    ("mode", "effect", "rolled_back"),
    [
        ("auto", "patch", ("True", "ScoreParity")),
        ("dryRun", "dry-run", ("False", "DryRun")),
        ("off", "observe", ("False", "ModeOff")),
    ],
)
def test_modes(mode: str, effect: str, rolled_back: tuple[str, str]) -> None:
    d = decide(inp([chunk(BAD, 0, parity=0.5)], policy=policy(mode=mode)))
    assert (d.action, d.effect, d.target_revision) == ("rollback", effect, 3)
    assert cond(d, "RolledBack") == rolled_back


@pytest.mark.parametrize(
    ("known_good", "rejected", "revisions", "reason"),
    [
        (None, {}, REVISIONS, "NoKnownGood"),
        (KnownGood(GOOD, 3), {GOOD: "x"}, REVISIONS, "KnownGoodRejected"),
        (KnownGood(GOOD, 3), {}, {4: BAD, 5: "older-0"}, "KnownGoodRevisionMissing"),
    ],
)
def test_nothing_to_roll_back_to_says_so(
    known_good: KnownGood | None, rejected: dict[str, str], revisions: dict[int, str], reason: str
) -> None:
    d = decide(
        inp(
            [chunk(BAD, 0, parity=0.5)],
            known_good=known_good,
            rejected=rejected,
            revisions=revisions,
        )
    )
    assert d.action == "unavailable"
    assert d.target_revision is None
    assert cond(d, "RollbackUnavailable") == ("True", reason)


def test_never_targets_an_unknown_revision() -> None:
    d = decide(inp([chunk(BAD, 0, parity=0.5)], revisions={1: None, 4: BAD, 9: GOOD}))
    assert d.target_revision == 9


def test_known_good_degrading_recommends_retraining_without_rollback() -> None:
    chunks = [
        chunk(
            GOOD,
            i,
            realized=0.62,
            known_good_realized=0.62,
            labelled_rows=400,
            drifted=("pressure",),
            estimated=0.6,
        )
        for i in range(3)
    ]
    d = decide(
        inp(chunks, live_version=GOOD, live_revision=3, policy=policy(rollbackOnWorldDrift=True))
    )
    assert d.action == "recommend-retraining"
    assert d.target_revision is None
    assert cond(d, "RetrainingRecommended") == ("True", "KnownGoodDegrading")
    assert cond(d, "Ready") == ("True", "KnownGood")
    assert cond(d, "DriftDetected") == ("True", "FeatureDrift")


def test_known_good_is_never_judged_by_shadow_rules() -> None:
    chunks = healthy(3, version=GOOD, parity=0.0, rank=0.1, estimated=0.5)
    d = decide(inp(chunks, live_version=GOOD, live_revision=3))
    assert d.action == "none"
    assert cond(d, "RolledBack") == ("False", "NoRollback")


def test_rolled_back_condition_persists_after_the_rollback() -> None:
    last = {"toVersion": GOOD, "trigger": "parity", "reason": "ScoreParity: ..."}
    d = decide(
        inp(
            [],
            live_version=GOOD,
            live_revision=5,
            incident=Incident(last_rollback=RollbackRecord.from_json(last)),
        )
    )
    assert cond(d, "RolledBack") == ("True", "ScoreParity")
    dry = decide(
        inp(
            [],
            live_version=GOOD,
            live_revision=5,
            incident=Incident(last_rollback=RollbackRecord.from_json({**last, "dryRun": True})),
        )
    )
    assert cond(dry, "RolledBack") == ("False", "NoRollback")


def test_last_estimate_comes_from_the_latest_valid_chunk() -> None:
    d = decide(
        inp(
            [
                chunk(BAD, 0, estimated=0.8),
                chunk(BAD, 1, estimated=0.9),
                chunk(BAD, 2, rows=10, estimated=0.1),
            ]
        )
    )
    assert d.last_estimate is not None
    assert (d.last_estimate["value"], d.last_estimate["chunk"]) == (0.9, 1)


def test_merge_conditions_moves_transition_time_only_on_flip() -> None:
    first = decide(inp(healthy(2))).conditions
    t0, t1 = NOW, NOW + timedelta(hours=1)
    merged = merge_conditions([], first, t0, generation=3)
    assert all(c["lastTransitionTime"] == "2026-01-10T12:00:00Z" for c in merged)
    assert all(c["observedGeneration"] == 3 for c in merged)
    again = merge_conditions(merged, decide(inp(healthy(3))).conditions, t1, generation=4)
    ready = next(c for c in again if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-10T12:00:00Z"  # still True
    assert ready["observedGeneration"] == 4
    flipped = merge_conditions(merged, decide(inp([chunk(BAD, 0, parity=0.9)])).conditions, t1, 4)
    ready = next(c for c in flipped if c["type"] == "Ready")
    assert (ready["status"], ready["lastTransitionTime"]) == ("False", "2026-01-10T13:00:00Z")


def test_decide_is_pure() -> None:
    data = inp([chunk(BAD, i, estimated=0.7) for i in range(3)])
    assert decide(data) == decide(data)


def test_a_gate_decision_names_its_hold_out_evidence_not_chunks() -> None:
    d = decide(inp([], live_holdout={"roc_auc": 0.80}, known_good_holdout={"roc_auc": 0.87}))
    assert d.trigger == "gate"
    assert "shared hold-out: roc_auc 0.8000 vs known-good 0.8700" in d.message
    assert "chunk" not in d.message
    chunks = decide(inp([chunk(BAD, 0, parity=0.5)])).message
    assert "on chunks [0]" in chunks

"""The rules that find a rollback trigger: each turns the live version's evidence into
`TriggerEvidence` (the metric, its value, the bound it crossed, on which chunks) or nothing.

Why a module of its own: `decide.py` owns the order of judgement and the guards;
the rules themselves (release gate, score parity, rank correlation, cumulative estimated and
realized gaps, opt-in world drift) are the measured part (docs/design.md, "Deciding") and are read
and tuned one at a time. The gaps are `monitor.core.gap`'s, filtered by the policy's values
(`gap_filter`), the same the exported series and the candidate verdicts use. Pure like the
decision: plain data in, plain data out, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from monitor.core.evidence import ChunkEvidence
from monitor.core.gap import (
    ChunkGap,
    GapField,
    GapFilter,
    GapRules,
    gap_pairs,
    pool,
    running_gap,
)
from monitor.decision.policy import Policy
from monitor.decision.types import DecisionInput, TriggerEvidence


def find_trigger(
    inp: DecisionInput,
    valid: list[ChunkEvidence],
    degraded: bool,
    drifting: bool,
    every: list[ChunkEvidence] | None = None,
) -> tuple[str, TriggerEvidence] | None:
    """The first rule that fires. `valid`: full chunks of enough rows (the per-chunk rules);
    `every`: every chunk, partial ones too (None: `valid`), which the gap rules pool to their
    minimums -- as the exported gap and the candidate verdicts count them."""
    pooled = valid if every is None else every
    version = inp.live_version or ""
    if version in inp.rejected:
        ev = TriggerEvidence("rejected", 1.0, 0.0, (), version, None)
        return "rejected", replace(ev, metric=f"rejected ({inp.rejected[version]})")
    gate = _gate(inp)
    if gate is not None:
        return "gate", gate
    candidate = _candidate(inp)
    if candidate is not None:
        return "candidate", candidate
    kg = inp.known_good.version if inp.known_good else None
    comparable = [c for c in valid if kg is not None and c.known_good_version == kg]
    policy = inp.policy
    rules: list[tuple[str, Callable[[], TriggerEvidence | None]]] = [
        ("parity", lambda: _parity(policy, valid, version)),
        ("rank_correlation", lambda: _rank(policy, comparable, version)),
        ("estimated_gap", lambda: _gap(policy, pooled, kg, version, "estimated")),
        ("realized_gap", lambda: _gap(policy, pooled, kg, version, "realized")),
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
            detail=f"shared hold-out: {metric} {live:.4f} vs known-good {kg:.4f}",
        )
    return None


def _candidate(inp: DecisionInput) -> TriggerEvidence | None:
    """A version judged `Worse` as a candidate, on the baseline's rows, before it served."""
    verdict = inp.candidate
    if inp.gate_waived or verdict is None or verdict.verdict != "Worse":
        return None
    if not inp.policy.candidate_policy.reject_worse:
        return None
    basis = verdict.realized if verdict.basis == "realized" else verdict.estimated
    margin = (
        inp.policy.candidate_policy.realized_margin
        if verdict.basis == "realized"
        else inp.policy.candidate_policy.margin
    )
    return TriggerEvidence(
        f"candidate_{verdict.basis}_gap",
        basis.gap if basis.gap is not None else float("nan"),
        -margin,
        (),
        inp.live_version or "",
        None,
        detail=f"as a candidate: {verdict.evidence()}",
    )


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


def gap_rules(policy: Policy) -> GapRules:
    """The gap filter's values the spec sets (the others scale with the chunk): what the
    analysis needs to export the gap these rules act on."""
    return GapRules(
        policy.min_rows_per_chunk if "minRowsPerChunk" in policy.explicit else None,
        policy.realized_gap_min_labelled_rows
        if "realizedGap.minLabelledRows" in policy.explicit
        else None,
        policy.estimated_gap_same_learner_only,
    )


def gap_filter(policy: Policy, baseline: str | None) -> GapFilter:
    """The chunks a resolved policy's gap rules count (`monitor.core.gap`): what the
    candidate verdicts count too."""
    return GapFilter(
        baseline,
        policy.min_rows_per_chunk,
        policy.realized_gap_min_labelled_rows,
        policy.estimated_gap_same_learner_only,
    )


def cumulative_gap_rule(
    policy: Policy, evidence: Sequence[ChunkEvidence], baseline: str | None, field: GapField
) -> list[tuple[int, float]]:
    """The rule's running gap (chunk index, gap since the release up to it) on `evidence`."""
    metric = policy.estimated_gap_metric if field == "estimated" else policy.realized_gap_metric
    chunks = [ChunkGap.of(c, metric) for c in evidence]
    return running_gap(gap_pairs(chunks, field, gap_filter(policy, baseline)))


def _gap(
    policy: Policy,
    evidence: Sequence[ChunkEvidence],
    baseline: str | None,
    version: str,
    field: GapField,
) -> TriggerEvidence | None:
    """The cumulative same-rows gap since the release, checked after each chunk: K
    consecutive chunks below the bound."""
    if field == "estimated":
        metric, bound, k = (
            policy.estimated_gap_metric,
            policy.estimated_gap_min,
            policy.estimated_gap_chunks,
        )
    else:
        metric, bound, k = (
            policy.realized_gap_metric,
            policy.realized_gap_min,
            policy.realized_gap_chunks,
        )
    flags = [
        (index, gap, gap < bound)
        for index, gap in cumulative_gap_rule(policy, evidence, baseline, field)
    ]
    run = _first_run(flags, k)
    if run is None:
        return None
    name = f"cumulative_{field}_{metric}_gap"
    return TriggerEvidence(name, run[1], bound, tuple(run[0]), version, None)


def judged_units(policy: Policy, full: Sequence[ChunkEvidence]) -> int:
    """How many chunks probation has judged: full chunks, consecutive smaller ones pooled
    until they hold `minRowsPerChunk` rows (one each when chunks are big enough)."""
    units = rows = 0
    for chunk in sorted(full, key=lambda c: c.chunk_index):
        rows += chunk.rows
        if rows >= policy.min_rows_per_chunk:
            units, rows = units + 1, 0
    return units


def gap_waits(inp: DecisionInput, evidence: Sequence[ChunkEvidence]) -> list[str]:
    """Which gap rule's pool is short of its minimum, and by how many rows: what
    `WaitingForData` says while small chunks accumulate."""
    kg = inp.known_good.version if inp.known_good else None
    if kg is None:
        return []
    policy = inp.policy
    where = gap_filter(policy, kg)
    out = []
    fields: tuple[tuple[GapField, str], ...] = (
        ("estimated", policy.estimated_gap_metric),
        ("realized", policy.realized_gap_metric),
    )
    for field, metric in fields:
        pooling = pool([ChunkGap.of(c, metric) for c in evidence], field, where)
        if not pooling.open_chunks:
            continue
        short = [f"{pooling.rows_short} more rows"] if pooling.rows_short else []
        if pooling.labelled_short:
            short.append(f"{pooling.labelled_short} more labelled rows")
        chunks = pooling.open_chunks
        span = f"chunk {chunks[0]}" if len(chunks) == 1 else f"chunks {chunks[0]}-{chunks[-1]}"
        out.append(
            f"{field} gap pools {span} ({pooling.open_rows} rows), waits for {' and '.join(short)}"
        )
    return out

"""A candidate's verdict from its same-rows evidence: pure, like the rollback decision.

Why these rules: on the shipped data a candidate scored on the baseline's rows shows the
same picture a serving release does in shadow -- the equivalent retrain's gap stays near
zero, the bad releases' sit well below -0.03 (docs/progressive-delivery.md, measured). A
verdict is only given when the band over the chunks (`monitor.core.gap`, a t interval: honest
about how much the gap moves between chunks; the chunks counted as the rollback rules count
them) clears the margin; until then it is
`Inconclusive`, with how many more chunks would likely decide it. Realized gaps (labels on
the same rows) outrank estimated ones once there are enough of them; for a different
learner the estimated gap is not comparable (CBPE is biased in opposite directions for
different learners, docs/design.md), so only labels decide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from monitor.core.gap import GapFilter, GapSummary, same_rows_gap, summarize
from monitor.decision.policy import CandidatePolicy
from monitor.memory.candidates import CandidateChunk

Verdict = Literal["Better", "Equivalent", "Worse", "Inconclusive", "Incompatible"]
VERDICTS: tuple[Verdict, ...] = ("Better", "Equivalent", "Worse", "Inconclusive", "Incompatible")
# Beyond this many more chunks an estimate of "chunks needed" says nothing useful.
MAX_CHUNKS_NEEDED = 24


@dataclass(frozen=True)
class CandidateVerdict:
    version: str
    verdict: Verdict
    reason: str
    message: str
    baseline_version: str | None
    estimated: GapSummary
    realized: GapSummary
    labelled_rows: int = 0
    chunks_needed: int | None = None
    basis: Literal["estimated", "realized", "none"] = "none"

    @property
    def chunks(self) -> int:
        return max(self.estimated.chunks, self.realized.chunks)

    @property
    def rows(self) -> int:
        return self.estimated.rows

    def to_json(self) -> dict[str, Any]:
        """Plain numbers (the API, the audit, the state)."""
        return {
            "version": self.version,
            "verdict": self.verdict,
            "reason": self.reason,
            "message": self.message,
            "baseline_version": self.baseline_version,
            "basis": self.basis,
            "chunks": self.chunks,
            "rows": self.rows,
            "labelled_rows": self.labelled_rows,
            "chunks_needed": self.chunks_needed,
            "estimated_gap": self.estimated.gap,
            "estimated_gap_lower": self.estimated.lower,
            "estimated_gap_upper": self.estimated.upper,
            "realized_gap": self.realized.gap,
            "realized_gap_lower": self.realized.lower,
            "realized_gap_upper": self.realized.upper,
            "level": self.estimated.level,
        }

    def to_status(self) -> dict[str, Any]:
        """`status.candidates[]` (camelCase; decimals as strings, no floats in the API)."""
        out: dict[str, Any] = {
            "version": self.version,
            "verdict": self.verdict,
            "reason": self.reason,
            "message": self.message,
            "chunks": self.chunks,
            "rows": self.rows,
            "labelledRows": self.labelled_rows,
        }
        if self.baseline_version:
            out["baselineVersion"] = self.baseline_version
        if self.chunks_needed is not None:
            out["chunksNeeded"] = self.chunks_needed
        for key, value in (
            ("estimatedGap", self.estimated.gap),
            ("estimatedGapLower", self.estimated.lower),
            ("estimatedGapUpper", self.estimated.upper),
            ("realizedGap", self.realized.gap),
        ):
            if value is not None:
                out[key] = f"{value:.4f}"
        return out

    def evidence(self) -> str:
        """One line for Events and the audit: the gap, its band, what it stands on."""
        summary = self.realized if self.basis == "realized" else self.estimated
        if summary.gap is None:
            return self.message
        band = ""
        if summary.lower is not None and summary.upper is not None:
            band = f" [{summary.lower:+.4f}, {summary.upper:+.4f}] at {summary.level:.0%}"
        return (
            f"{self.basis} same-rows gap {summary.gap:+.4f}{band} vs {self.baseline_version} "
            f"over {summary.chunks} chunks / {summary.rows} rows"
        )


def judge(
    version: str,
    chunks: Sequence[CandidateChunk],
    policy: CandidatePolicy,
    same_learner: bool = True,
    registered: bool = True,
    gaps: GapFilter | None = None,
) -> CandidateVerdict:
    """The verdict on `version` from its scored chunks (of the most recent baseline).

    `gaps`: which chunks the gaps count, as the rollback rules do (`rules.gap_filter` of
    the resolved policy; its baseline is replaced by the chunks' most recent one). None:
    every chunk with a figure, an estimate only within one learner."""
    empty = summarize((), policy.level)

    def verdict(
        v: Verdict,
        reason: str,
        message: str,
        est: GapSummary = empty,
        real: GapSummary = empty,
        baseline: str | None = None,
        labelled_rows: int = 0,
        chunks_needed: int | None = None,
        basis: Literal["estimated", "realized", "none"] = "none",
    ) -> CandidateVerdict:
        return CandidateVerdict(
            version, v, reason, message, baseline, est, real, labelled_rows, chunks_needed, basis
        )

    if not registered:
        return verdict(
            "Inconclusive", "NotRegistered", "not registered with the monitor (no artifact)"
        )
    if not chunks:
        return verdict("Inconclusive", "NoEvidence", "no baseline chunk scored yet")
    baseline = max(chunks, key=lambda c: c.analysed_at).baseline_version
    mine = [c for c in chunks if c.baseline_version == baseline]
    where = replace(gaps or GapFilter(baseline), baseline=baseline)
    figures = [c.gap(same_learner) for c in mine]
    est = same_rows_gap(figures, "estimated", where, policy.level)
    real = same_rows_gap(figures, "realized", where, policy.level)
    labelled = sum(c.labelled_rows for c in mine)
    rows = sum(c.rows for c in mine)

    missing = sorted({f for c in mine for f in c.missing_features})
    if missing:
        return verdict(
            "Incompatible",
            "MissingFeatures",
            f"the live traffic lacks features the candidate needs: {', '.join(missing)}",
            est,
            real,
            baseline=baseline,
            labelled_rows=labelled,
        )
    unseen = _never_seen(mine)
    if unseen and rows >= policy.min_rows:
        listed = "; ".join(f"{f}: {', '.join(cats)}" for f, cats in sorted(unseen.items()))
        return verdict(
            "Incompatible",
            "UnseenCategories",
            f"categories the candidate was trained on never appear in {rows} live rows ({listed})",
            est,
            real,
            baseline=baseline,
            labelled_rows=labelled,
        )

    decided = _decide(real, policy.realized_margin, policy.margin, policy, "realized")
    if decided is not None:
        return verdict(
            *decided, est, real, basis="realized", baseline=baseline, labelled_rows=labelled
        )
    if not same_learner:
        return verdict(
            "Inconclusive",
            "DifferentLearner",
            "a different learner: its CBPE estimate is not comparable with the baseline's, "
            f"so only labels decide ({real.chunks} labelled chunks of {policy.min_chunks})",
            est,
            real,
            chunks_needed=max(0, policy.min_chunks - real.chunks) or None,
            baseline=baseline,
            labelled_rows=labelled,
        )
    if est.chunks < policy.min_chunks or est.rows < policy.min_rows:
        per_chunk = est.rows / est.chunks if est.chunks else 0
        more_rows = (
            math.ceil((policy.min_rows - est.rows) / per_chunk)
            if per_chunk and est.rows < policy.min_rows
            else 0
        )
        needed = max(policy.min_chunks - est.chunks, more_rows, 1)
        return verdict(
            "Inconclusive",
            "TooFewRows",
            f"{est.chunks} chunks / {est.rows} rows scored; a verdict needs at least "
            f"{policy.min_chunks} chunks and {policy.min_rows} rows",
            est,
            real,
            chunks_needed=needed,
            basis="estimated",
            baseline=baseline,
            labelled_rows=labelled,
        )
    decided = _decide(est, policy.margin, policy.margin, policy, "estimated")
    if decided is not None:
        return verdict(
            *decided, est, real, basis="estimated", baseline=baseline, labelled_rows=labelled
        )
    return verdict(
        "Inconclusive",
        "BandOverlaps",
        f"estimated gap {est.gap:+.4f} with band [{est.lower:+.4f}, {est.upper:+.4f}] "
        f"clears neither zero beyond the margin {policy.margin:.3f} nor the equivalence margin",
        est,
        real,
        chunks_needed=_more_chunks(est, policy.margin),
        basis="estimated",
        baseline=baseline,
        labelled_rows=labelled,
    )


def _decide(
    s: GapSummary, worse: float, equivalent: float, policy: CandidatePolicy, basis: str
) -> tuple[Verdict, str, str] | None:
    """Better / Worse when the band clears zero and the gap is beyond `worse`; Equivalent
    when the band lies within +-`equivalent`; None while neither (or too little stands
    behind it)."""
    if s.gap is None or s.lower is None or s.upper is None:
        return None
    if s.chunks < policy.min_chunks or s.rows < policy.min_rows:
        return None
    said = f"{basis} gap {s.gap:+.4f} [{s.lower:+.4f}, {s.upper:+.4f}] over {s.chunks} chunks"
    if s.upper < 0 and s.gap <= -worse:
        return "Worse", "WorseOnSameRows", f"{said}: worse than the baseline by more than {worse}"
    if s.lower > 0 and s.gap >= worse:
        return "Better", "BetterOnSameRows", f"{said}: better by more than {worse}"
    if s.lower >= -equivalent and s.upper <= equivalent:
        return (
            "Equivalent",
            "EquivalentOnSameRows",
            f"{said}: within +-{equivalent} of the baseline",
        )
    return None


def _more_chunks(s: GapSummary, margin: float) -> int | None:
    """More chunks that would likely decide, if the mean and spread hold; None: unknown."""
    options = []
    if s.gap is not None and s.gap <= -margin:
        options.append(s.chunks_to_clear(0.0, below=True))
    if s.gap is not None and s.gap >= margin:
        options.append(s.chunks_to_clear(0.0, below=False))
    if s.gap is not None and abs(s.gap) < margin:
        upper = s.chunks_to_clear(margin, below=True)
        lower = s.chunks_to_clear(-margin, below=False)
        if upper is not None and lower is not None:
            options.append(max(upper, lower))
    found = [n - s.chunks for n in options if n is not None]
    if not found or min(found) > MAX_CHUNKS_NEEDED:
        return None  # the gap sits at the margin: more chunks alone will hardly decide it
    return max(1, min(found))


def _never_seen(chunks: Sequence[CandidateChunk]) -> dict[str, list[str]]:
    """Categories unseen in every scored chunk."""
    common: dict[str, set[str]] | None = None
    for chunk in chunks:
        here = {f: set(c) for f, c in chunk.unseen_categories.items()}
        if common is None:
            common = here
        else:
            common = {f: common[f] & here[f] for f in common.keys() & here.keys()}
    return {f: sorted(c) for f, c in (common or {}).items() if c}


def summary(verdicts: Sequence[CandidateVerdict]) -> str:
    """`status.candidateSummary`, for a printer column: `v2=Worse v3=Equivalent`."""
    return " ".join(f"{v.version}={v.verdict}" for v in verdicts)

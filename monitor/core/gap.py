"""The same-rows gap: one definition for the rollback rules, the candidate verdicts, the
exported series (what the progressive-delivery templates gate on) and the report.

A gap is the row-weighted mean over chunks of (version - baseline) on the very same rows:
the live release against its known-good version scored in shadow, or a candidate against
the serving baseline. Which chunks count is one `GapFilter` (it was compared with *this*
baseline, for an estimate within one learner -- CBPE is biased in opposite directions
across learners --; chunks smaller than its minimum rows, or labelled rows, are pooled
with the next ones until they hold enough: `pool`), its values a
ModelMonitor's (`GapRules`: what the spec sets, the rest scaled to the chunk), so the canary
gate and the rollback rule read the same gap for the same release.

Why a band from the chunks themselves: on this data the gap moves from chunk to chunk
with the weather far more than NannyML's sampling error says (docs/design.md, "Deciding"),
so the honest uncertainty of the mean gap is the chunks' own spread -- a Student-t
interval over the chunks, wide after two chunks and narrowing as they accumulate. Plain
numbers in, plain numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from scipy.stats import t as student_t

from monitor.core.evidence import ChunkEvidence

GapField = Literal["estimated", "realized"]
# The rollback rules' per-chunk minimums, as shares of the chunk (the measured 300 rows and
# 200 labelled rows at 500-row chunks); a ModelMonitor may set them explicitly.
MIN_ROWS_SHARE = 0.6
MIN_LABELLED_SHARE = 0.4
FALLBACK_CHUNK_ROWS = 500  # before the analysis has derived a size from the reference


@dataclass(frozen=True)
class ChunkGap:
    """One chunk's same-rows figures: version minus `baseline` (None: not both known)."""

    chunk_index: int
    rows: int
    labelled_rows: int
    baseline: str | None
    same_learner: bool | None
    estimated: float | None
    realized: float | None

    @classmethod
    def of(cls, chunk: ChunkEvidence, metric: str = "roc_auc") -> ChunkGap:
        """A serving version's chunk against the known-good version scored in shadow."""
        live, good = chunk.estimated.get(metric), chunk.known_good_estimated.get(metric)
        real, good_real = chunk.realized.get(metric), chunk.known_good_realized.get(metric)
        estimated = None
        if live is not None and good is not None and live.value is not None:
            estimated = None if good.value is None else live.value - good.value
        return cls(
            chunk.chunk_index,
            chunk.rows,
            chunk.labelled_rows,
            chunk.known_good_version,
            chunk.same_learner,
            estimated,
            None if real is None or good_real is None else real - good_real,
        )


@dataclass(frozen=True)
class GapFilter:
    """Which chunks a gap counts, and how many rows stand behind each figure. `baseline`:
    only chunks compared with this version (None: none count -- nothing to compare with);
    an estimated gap only within one learner when `same_learner_only`. `min_rows` (and for
    a realized gap `min_labelled_rows`) is what one figure needs: a chunk holding fewer is
    pooled with the next ones (`pool`) until together they hold enough."""

    baseline: str | None
    min_rows: int = 1
    min_labelled_rows: int = 1
    same_learner_only: bool = True

    @classmethod
    def scaled(cls, baseline: str | None, chunk_rows: int | None) -> GapFilter:
        """The filter of a ModelMonitor that sets none of its values, at this chunk size."""
        return GapRules().at(baseline, chunk_rows)

    def weight(self, chunk: ChunkGap, field: GapField) -> float:
        """The chunk's weight in the gap (its rows, or its labelled rows); 0: left out
        (another baseline, another learner, no labels)."""
        if chunk.baseline is None or chunk.baseline != self.baseline:
            return 0.0
        if field == "estimated":
            if self.same_learner_only and chunk.same_learner is not True:
                return 0.0
            return float(chunk.rows)
        return float(chunk.labelled_rows)

    def enough(self, rows: int, labelled_rows: int, field: GapField) -> bool:
        """Whether a (pooled) figure on this many rows counts."""
        if rows < self.min_rows:
            return False
        return field == "estimated" or labelled_rows >= self.min_labelled_rows


@dataclass(frozen=True)
class Pooled:
    """Consecutive chunks counted as one figure: `chunk_indexes` (the last one is where the
    figure stands), their weighted mean `gap`, its `weight`, the rows behind it."""

    chunk_indexes: tuple[int, ...]
    gap: float
    weight: float
    rows: int
    labelled_rows: int


@dataclass(frozen=True)
class Pooling:
    """A gap's pooled figures in chunk order, and the pool still short of the minimum:
    its chunks and how many more rows (labelled rows for a realized gap) it waits for."""

    figures: tuple[Pooled, ...]
    open_chunks: tuple[int, ...] = ()
    open_rows: int = 0
    rows_short: int = 0  # more rows the open pool needs (0: no open pool)
    labelled_short: int = 0  # more labelled rows it needs (a realized gap)


def pool(chunks: Iterable[ChunkGap], field: GapField, where: GapFilter) -> Pooling:
    """Consecutive kept chunks pooled until each pool holds `where`'s minimum rows.

    A chunk with a finite gap that `where` keeps joins the open pool; once the pool holds
    `min_rows` rows (and, for a realized gap, `min_labelled_rows` labelled rows) it becomes
    one figure -- the row-weighted mean of its chunks' gaps, the gap's own definition, so
    pooling never moves the mean, it only decides which chunks count and how many figures
    the band and the K-consecutive rules see. A chunk big enough on its own is one figure
    (what every chunk was before pooling). The last pool, still short, waits.
    """
    figures: list[Pooled] = []
    members: list[tuple[int, float, float, int, int]] = []
    for chunk in sorted(chunks, key=lambda c: c.chunk_index):
        gap = chunk.estimated if field == "estimated" else chunk.realized
        weight = where.weight(chunk, field)
        if gap is None or not math.isfinite(gap) or weight <= 0:
            continue
        members.append((chunk.chunk_index, float(gap), weight, chunk.rows, chunk.labelled_rows))
        rows = sum(m[3] for m in members)
        labelled = sum(m[4] for m in members)
        if where.enough(rows, labelled, field):
            total = sum(m[2] for m in members)
            mean = sum(m[1] * m[2] for m in members) / total
            figures.append(Pooled(tuple(m[0] for m in members), mean, total, rows, labelled))
            members = []
    rows = sum(m[3] for m in members)
    labelled = sum(m[4] for m in members)
    return Pooling(
        tuple(figures),
        tuple(m[0] for m in members),
        rows,
        max(0, where.min_rows - rows) if members else 0,
        max(0, where.min_labelled_rows - labelled) if members and field == "realized" else 0,
    )


@dataclass(frozen=True)
class GapRules:
    """The filter values a ModelMonitor sets itself (`spec.minRowsPerChunk`,
    `rollbackRules.realizedGap.minLabelledRows`, `rollbackRules.estimatedGap.sameLearnerOnly`);
    a minimum left unset scales with the chunk: `MIN_ROWS_SHARE`, `MIN_LABELLED_SHARE`."""

    min_rows: int | None = None
    min_labelled_rows: int | None = None
    same_learner_only: bool = True

    def at(self, baseline: str | None, chunk_rows: int | None) -> GapFilter:
        """The filter at this chunk size (None: the fallback size), what
        `monitor.decision.policy.resolve` resolves the policy to."""
        basis = chunk_rows or FALLBACK_CHUNK_ROWS
        return GapFilter(
            baseline,
            self.min_rows or max(1, math.ceil(MIN_ROWS_SHARE * basis)),
            self.min_labelled_rows or max(1, math.ceil(MIN_LABELLED_SHARE * basis)),
            self.same_learner_only,
        )


def latest_baseline(chunks: Iterable[ChunkEvidence]) -> str | None:
    """The known-good version the newest compared chunk was scored against."""
    found = [c for c in chunks if c.known_good_version is not None]
    return max(found, key=lambda c: c.chunk_index).known_good_version if found else None


def gap_pairs(
    chunks: Iterable[ChunkGap], field: GapField, where: GapFilter
) -> list[tuple[int, float, float]]:
    """(chunk index, gap, weight) of every pooled figure (`pool`), in chunk order: the
    index is the pool's last chunk."""
    return [(f.chunk_indexes[-1], f.gap, f.weight) for f in pool(chunks, field, where).figures]


def running_gap(pairs: Iterable[tuple[int, float, float]]) -> list[tuple[int, float]]:
    """(chunk index, the gap over the chunks up to it) after each kept chunk: what a rule
    checks chunk by chunk (K consecutive breaches)."""
    out = []
    total = weight = 0.0
    for index, gap, w in pairs:
        total += gap * w
        weight += w
        out.append((index, total / weight))
    return out


def same_rows_gap(
    chunks: Iterable[ChunkGap], field: GapField, where: GapFilter, level: float = 0.9
) -> GapSummary:
    """The gap over the chunks `where` keeps, with its band at `level`."""
    return summarize(((g, w) for _, g, w in gap_pairs(chunks, field, where)), level)


@dataclass(frozen=True)
class GapSummary:
    """A mean gap over `chunks` chunks (`rows` rows) and its two-sided band at `level`.

    `lower`/`upper` are None while fewer than two chunks stand behind the gap: one chunk
    says nothing about how much the gap moves.
    """

    gap: float | None
    lower: float | None
    upper: float | None
    rows: int
    chunks: int
    spread: float | None  # sd of the per-chunk gaps
    level: float

    def chunks_to_clear(self, bound: float, below: bool) -> int | None:
        """Chunks (in all) after which the band would clear `bound` on the side the mean is
        on, if the mean and spread stay as they are; None when the mean is on the wrong side
        of the bound or nothing is known yet."""
        if self.gap is None or self.spread is None or self.chunks < 2:
            return None
        distance = (bound - self.gap) if below else (self.gap - bound)
        if distance <= 0:
            return None
        if self.spread == 0:
            return self.chunks
        z = float(student_t.ppf((1 + self.level) / 2, max(self.chunks - 1, 1)))
        return max(self.chunks, math.ceil((z * self.spread / distance) ** 2))


def summarize(pairs: Iterable[tuple[float | None, float]], level: float = 0.9) -> GapSummary:
    """(gap, weight) per chunk -> the weighted mean gap and its t band over the chunks.

    Chunks without a finite gap or with no weight are left out. The band uses the chunks'
    sd and the effective number of chunks (sum w)^2 / sum w^2, so a few big chunks do not
    pass for many.
    """
    kept = [(float(g), float(w)) for g, w in pairs if g is not None and math.isfinite(g) and w > 0]
    rows = int(sum(w for _, w in kept))
    if not kept:
        return GapSummary(None, None, None, 0, 0, None, level)
    total = sum(w for _, w in kept)
    mean = sum(g * w for g, w in kept) / total
    n = len(kept)
    if n < 2:
        return GapSummary(mean, None, None, rows, n, None, level)
    # The chunks' own spread (each chunk one draw of the weather), shrunk by the effective
    # number of chunks: Var(sum w g / sum w) = sd^2 * sum w^2 / (sum w)^2.
    plain = sum(g for g, _ in kept) / n
    spread = math.sqrt(sum((g - plain) ** 2 for g, _ in kept) / (n - 1))
    effective = total**2 / sum(w * w for _, w in kept)
    z = float(student_t.ppf((1 + level) / 2, n - 1))
    half = z * spread / math.sqrt(effective)
    return GapSummary(mean, mean - half, mean + half, rows, n, spread, level)


def serving_gap(
    chunks: Iterable[ChunkEvidence],
    field: GapField,
    chunk_rows: int | None = None,
    level: float = 0.9,
    rules: GapRules | None = None,
) -> GapSummary:
    """A serving version's gap against the known-good version its newest compared chunk
    was scored with, counted as the ModelMonitor's `rules` (None: a spec that sets none)
    count it at this chunk size: the exported series and the report's figure."""
    chunks = list(chunks)
    where = (rules or GapRules()).at(latest_baseline(chunks), chunk_rows)
    return same_rows_gap([ChunkGap.of(c) for c in chunks], field, where, level)


def serving_gap_series(
    chunks: Iterable[ChunkEvidence], field: GapField, chunk_rows: int | None = None
) -> list[float | None]:
    """`serving_gap`'s value as it stood after each chunk (in chunk order), for a figure."""
    chunks = sorted(chunks, key=lambda c: c.chunk_index)
    where = GapFilter.scaled(latest_baseline(chunks), chunk_rows)
    after = dict(running_gap(gap_pairs([ChunkGap.of(c) for c in chunks], field, where)))
    out: list[float | None] = []
    for chunk in chunks:
        out.append(after.get(chunk.chunk_index, out[-1] if out else None))
    return out

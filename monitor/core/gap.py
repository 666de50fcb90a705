"""Same-rows gaps: the row-weighted mean of per-chunk gaps between two versions, with a band.

Why a band from the chunks themselves: on this data the gap between two versions scored on
the same rows moves from chunk to chunk with the weather far more than NannyML's sampling
error says (docs/design.md, "Deciding"), so the honest uncertainty of the mean gap is the
chunks' own spread -- a Student-t interval over the chunks, wide after two chunks and
narrowing as they accumulate. Used by the per-version gap the progressive-delivery templates
read and by the candidate verdicts; plain numbers in, plain numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scipy.stats import t as student_t


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

"""Re-analysis of stored row-range chunks whose labels grew or were corrected (one batch).

Out of cycle.py to keep it short; labels come hours after their records, so a chunk is
analysed once complete and again when its labels changed (`relabel.py` says which).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.analysis.ports import AnalysisStore
from monitor.core.drift_settings import DriftSettings
from monitor.core.evidence import ChunkEvidence


def reanalyse_labelled(
    store: AnalysisStore,
    live: FittedVersion,
    known_good: FittedVersion | None,
    candidates: list[ChunkEvidence],
    size: int,
    corrected: set[int] | None = None,
    drift: DriftSettings | None = None,
) -> list[ChunkEvidence]:
    """Re-analyse, in one batch, the stored chunks whose labelled-row count grew or whose
    labels were corrected (`corrected`: their indexes)."""
    if not candidates:
        return []
    model, version = live.key
    first, last = candidates[0], candidates[-1]
    span = store.records_frame(
        model,
        version,
        after_seq=first.first_seq - 1,
        limit=(last.chunk_index - first.chunk_index + 1) * size,
    )
    grown: list[tuple[ChunkEvidence, pd.DataFrame]] = []
    for chunk in candidates:
        rows = span[(span["seq"] >= chunk.first_seq) & (span["seq"] <= chunk.last_seq)]
        grew = int(rows["label"].notna().sum()) > chunk.labelled_rows
        if (grew or chunk.chunk_index in (corrected or ())) and len(rows) == chunk.rows:
            grown.append((chunk, rows))
    if not grown:
        return []
    batch = pd.concat([rows for _, rows in grown], ignore_index=True)
    fresh = analyse_chunks(live, batch, 0, known_good, chunk_size=size, drift_settings=drift)
    return [
        replace(ev, chunk_index=old.chunk_index) for ev, (old, _) in zip(fresh, grown, strict=True)
    ]

"""A version's track record from its stored chunks: how wrong its estimates have been.

The same summary the analysis attaches to each chunk (`ChunkEvidence.track_record`, what
the metrics publish), recomputed from the store so the API and the report survive a
restart: the last `TRACK_RECORD_CHUNKS` chunks with at least `CALIBRATION_LABELLED_SHARE` of their
rows labelled, each compared with the estimate and the intervals it carries.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.analysis.intervals import (
    CALIBRATION_LABELLED_SHARE,
    TRACK_RECORD_CHUNKS,
    residual_of,
    summarise,
)
from monitor.core.evidence import ChunkEvidence, TrackRecord


def track_record(
    chunks: Sequence[ChunkEvidence], last: int = TRACK_RECORD_CHUNKS
) -> dict[str, TrackRecord]:
    """Metric -> TrackRecord over the last `last` labelled chunks (in chunk order)."""
    labelled = [
        c
        for c in sorted(chunks, key=lambda c: c.chunk_index)
        if c.rows and c.labelled_rows >= CALIBRATION_LABELLED_SHARE * c.rows
    ]
    out: dict[str, TrackRecord] = {}
    metrics = sorted({m for c in labelled for m in c.estimated})
    for metric in metrics:
        residuals = [
            r
            for c in labelled
            if metric in c.estimated
            for r in [residual_of(c.estimated[metric], c.realized.get(metric))]
            if r is not None
        ][-last:]
        levels = [c.estimated[metric].interval_level for c in labelled if metric in c.estimated]
        level = next((x for x in reversed(levels) if x is not None), None)
        summary = summarise(residuals, metric, level if level is not None else 0.0)
        if summary is not None:
            out[metric] = summary
    return out


__all__ = ["track_record"]

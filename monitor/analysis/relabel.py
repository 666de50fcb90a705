"""Relabel detection: which stored chunks' labels changed since each was last analysed.

Labels come hours after their records, so a chunk is analysed once complete and again when
its labels changed: more arrived, or a label was corrected (same count, other values; the
store's label clock says which).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.analysis.ports import AnalysisStore
from monitor.core.evidence import ChunkEvidence

# Stored chunks still missing labels are re-checked this far back (in chunks) each cycle.
# Bounded so that rows whose label never comes do not make every cycle re-read history.
RELABEL_LOOKBACK_CHUNKS = 48


@dataclass
class LabelChanges:
    """Which stored chunks' labels changed since each was last analysed (the store's label
    clock, `Store.label_changes`): a corrected label re-analyses its chunk even when the
    count of labelled rows stayed the same."""

    model: str
    version: str
    clock: int = 0
    seen: dict[int, int] | None = None
    changes: list[tuple[int, int]] | None = None

    @classmethod
    def read(
        cls, store: AnalysisStore, model: str, version: str, stored: list[ChunkEvidence]
    ) -> LabelChanges:
        clock = int(store.label_clock())  # before the frames are read: nothing is missed
        if not stored:  # new chunks are analysed with every label up to `clock`
            return cls(model, version, clock, {}, [])
        seen = store.chunk_labels_seen(model, version)
        recent = stored[-RELABEL_LOOKBACK_CHUNKS:]
        since = min(seen.get(c.chunk_index, 0) for c in recent)
        changes = store.label_changes(model, version, since) if clock > since else []
        return cls(model, version, clock, seen, changes)

    def changed_chunks(self, chunks: list[ChunkEvidence]) -> set[int]:
        """Indexes of the (row-range) chunks with a label stamped after their last look."""
        if not self.changes or self.seen is None:
            return set()
        seqs = np.asarray([seq for seq, _ in self.changes])
        stamps = np.asarray([stamp for _, stamp in self.changes])
        out = set()
        for c in chunks:
            inside = (seqs >= c.first_seq) & (seqs <= c.last_seq)
            if np.any(stamps[inside] > self.seen.get(c.chunk_index, 0)):
                out.add(c.chunk_index)
        return out

    def changed_periods(self, frame: pd.DataFrame) -> set[int]:
        """Periods (`frame` has `seq` and `_period`) with a label stamped after their last look."""
        if not self.changes or self.seen is None:
            return set()
        stamp = dict(self.changes)
        out = set()
        for seq, period in zip(frame["seq"].to_numpy(), frame["_period"].to_numpy(), strict=True):
            found = stamp.get(int(seq))
            if found is not None and found > self.seen.get(int(period), 0):
                out.add(int(period))
        return out

    def mark_seen(self, store: AnalysisStore, saved: bool) -> None:
        """After the version's chunks are saved: all of them are checked up to `clock`
        (one write, only when some chunk was behind the clock or new chunks were saved)."""
        if self.seen is None or self.clock == 0:
            return
        behind = self.clock > min(self.seen.values(), default=self.clock)
        if behind or saved:
            store.mark_labels_seen(self.model, self.version, self.clock)

"""One analysis cycle: new chunks and newly labelled chunks of every version, stored and published.

Chunks are `chunk_size` consecutive records (by store sequence) of one model version; a
chunk is analysed once it is complete and analysed again when more of its labels have
arrived (labels come hours later, so realized performance fills in on a later cycle).
`VersionCache` keeps each version's fitted calculators for the life of the process: fitting
is the expensive part (about a second per version), applying them is linear in rows.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import replace
from typing import Any, Protocol

import pandas as pd

from contract.registration import Registration
from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.analysis.shadow import cumulative_gap
from monitor.evidence import ChunkEvidence
from monitor.state import OperatorState

log = logging.getLogger(__name__)

# Stored chunks still missing labels are re-checked this far back (in chunks) each cycle.
# Bounded so that rows whose label never comes do not make every cycle re-read history.
RELABEL_LOOKBACK_CHUNKS = 48


class Publisher(Protocol):
    """What `run_cycle` publishes to (monitor/metrics.py's `MonitorMetrics` implements it)."""

    def publish_chunk(self, evidence: ChunkEvidence) -> None: ...

    def publish_cumulative(
        self, model: str, version: str, estimated_gap: float | None, realized_gap: float | None
    ) -> None: ...

    def observe_analysis(
        self, duration_seconds: float, ok: bool, model: str | None = None
    ) -> None: ...

    def set_label_lag(self, model: str, seconds: float) -> None: ...


class VersionCache:
    """(model, version) -> FittedVersion, fitted lazily from the store's registration."""

    def __init__(self, store: Any, chunk_size: int = 500) -> None:
        self._store = store
        self._chunk_size = chunk_size
        self._fitted: dict[tuple[str, str, int], FittedVersion] = {}
        self._lock = threading.Lock()
        self.fits = 0  # how many versions were fitted (a fit per version, not per cycle)

    def get(self, model: str, version: str, chunk_size: int | None = None) -> FittedVersion:
        size = chunk_size or self._chunk_size
        key = (model, version, size)
        with self._lock:
            fitted = self._fitted.get(key)
            if fitted is None:
                fitted = FittedVersion.fit(self._registration(model, version), size)
                self._fitted[key] = fitted
                self.fits += 1
            return fitted

    def forget(self, model: str, version: str) -> None:
        with self._lock:
            for key in [k for k in self._fitted if k[:2] == (model, version)]:
                del self._fitted[key]

    def _registration(self, model: str, version: str) -> Registration:
        data = self._store.registration(model, version)
        allowed = {f.alias or name for name, f in Registration.model_fields.items()}
        payload = {k: v for k, v in data.items() if k in allowed}
        payload["artifact"] = base64.b64encode(self._store.artifact(model, version)).decode()
        return Registration.model_validate(payload)


def known_good_version(store: Any, model: str, live: str, registered: list[str]) -> str | None:
    """The operator's recorded known-good version, else the earliest version registered
    before the live one (a later release is never the yardstick of an earlier one).

    None when the live version is the known-good one (shadow-scoring it against itself
    says nothing) or when no version came before it.
    """
    recorded = OperatorState(store).known_good(model)
    chosen = recorded.version if recorded else None
    if chosen not in registered:
        earlier = registered[: registered.index(live)] if live in registered else []
        chosen = earlier[0] if earlier else None
    return None if chosen == live else chosen


def run_cycle(
    store: Any, settings: Any, cache: VersionCache, metrics: Publisher
) -> list[ChunkEvidence]:
    """Analyse every registered version's new and newly labelled chunks; save and publish."""
    chunk_size = int(getattr(settings, "chunk_size", 500))
    produced: list[ChunkEvidence] = []
    for model in store.models():
        infos = store.versions(model)
        registered = [v.version for v in infos if v.registered_at]
        for info in infos:
            if not info.registered_at or info.records == 0:
                continue
            started = time.perf_counter()
            try:
                stored = store.chunks(model, info.version)
                evidence = _analyse_version(
                    store, cache, model, info.version, registered, chunk_size, stored
                )
            except Exception:
                log.exception("analysis of %s:%s failed", model, info.version)
                metrics.observe_analysis(time.perf_counter() - started, False, model)
                continue
            _save(store, evidence)
            for ev in evidence:
                metrics.publish_chunk(ev)
            if evidence:
                merged = {c.chunk_index: c for c in stored} | {e.chunk_index: e for e in evidence}
                history = [merged[k] for k in sorted(merged)]
                metrics.publish_cumulative(
                    model,
                    info.version,
                    cumulative_gap(history, "estimated"),
                    cumulative_gap(history, "realized"),
                )
            metrics.observe_analysis(time.perf_counter() - started, True, model)
            produced.extend(evidence)
        _publish_label_lag(store, metrics, model)
    return produced


def _publish_label_lag(store: Any, metrics: Publisher, model: str) -> None:
    """Age of the oldest record still waiting for its label (0 when all are labelled)."""
    oldest = getattr(store, "oldest_unlabelled_us", lambda _m: None)(model)
    lag = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1e6)
    metrics.set_label_lag(model, lag)


def _save(store: Any, evidence: list[ChunkEvidence]) -> None:
    """One transaction for the whole batch when the store offers it (one fsync, not 200)."""
    save_many = getattr(store, "save_chunks", None)
    if save_many is not None:
        save_many(evidence)
        return
    for ev in evidence:
        store.save_chunk(ev)


def _analyse_version(
    store: Any,
    cache: VersionCache,
    model: str,
    version: str,
    registered: list[str],
    size: int,
    stored: list[ChunkEvidence],
) -> list[ChunkEvidence]:
    stored = sorted(stored, key=lambda c: c.chunk_index)
    next_index = stored[-1].chunk_index + 1 if stored else 0
    after_seq = stored[-1].last_seq if stored else 0
    complete = store.count_records(model, version, after_seq=after_seq) // size
    relabel = [
        c
        for c in stored
        if c.labelled_rows < c.rows == size
        and c.chunk_index >= next_index - RELABEL_LOOKBACK_CHUNKS
    ]
    if complete == 0 and not relabel:
        return []
    live = cache.get(model, version, size)
    kg_version = known_good_version(store, model, version, registered)
    known_good = cache.get(model, kg_version, size) if kg_version else None

    out = _reanalyse_labelled(store, live, known_good, relabel, size)
    if complete:
        rows = store.records_frame(model, version, after_seq=after_seq, limit=complete * size)
        out += analyse_chunks(live, rows, next_index, known_good, chunk_size=size)
    return out


def _reanalyse_labelled(
    store: Any,
    live: FittedVersion,
    known_good: FittedVersion | None,
    candidates: list[ChunkEvidence],
    size: int,
) -> list[ChunkEvidence]:
    """Re-analyse the stored chunks whose labelled-row count grew, in one batch."""
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
        if int(rows["label"].notna().sum()) > chunk.labelled_rows and len(rows) == chunk.rows:
            grown.append((chunk, rows))
    if not grown:
        return []
    batch = pd.concat([rows for _, rows in grown], ignore_index=True)
    fresh = analyse_chunks(live, batch, 0, known_good, chunk_size=size)
    return [
        replace(ev, chunk_index=old.chunk_index) for ev, (old, _) in zip(fresh, grown, strict=True)
    ]

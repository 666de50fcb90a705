"""One analysis cycle: new chunks and newly labelled chunks of every version, stored and published.

Each model is chunked as its `ChunkPlan` (`chunking.py`) says (plain data the loop reads from
the model's ModelMonitor; without one, `MONITOR_CHUNK_SIZE` rows):

- by rows: `rows` consecutive records (by store sequence) of one version; `rows=None` is the
  smallest chunk whose ROC AUC sampling error on the reference is within
  `max_sampling_error`. A chunk is analysed once complete and again when its labels changed:
  more arrived (labels come hours later, so realized performance fills in on a later cycle)
  or a label was corrected (same count, other values: `relabel.py` reads the store's label
  clock).
- by event time: one chunk per `period` (UTC; weeks start on Monday), its `chunk_index` the
  period's number since the epoch. A period is complete once its end has passed or a later
  period has records; it is re-analysed when its rows grew (a late backfill) or its labels
  changed.

What the analysis found (chunk size, rows waiting for a chunk, rows still needed) is stored
per version as `monitor.memory.state.ChunkingStatus` for the operator and `monitor status`, and
published as metrics. `VersionCache` keeps each version's fitted calculators for the life of
the process: fitting is the expensive part (about a second per version), applying them is
linear in rows.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from contract.registration import Registration
from monitor.analysis.candidates import score_candidates
from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.analysis.intervals import LABELLED_SHARE, residual_of
from monitor.analysis.plan import US, ChunkPlan, Sizing, period_origin_us
from monitor.analysis.ports import AnalysisStore, VersionView
from monitor.analysis.relabel import RELABEL_LOOKBACK_CHUNKS, LabelChanges
from monitor.analysis.shadow import cumulative_gap, gap_pairs
from monitor.core.evidence import ChunkEvidence
from monitor.core.gap import GapSummary, summarize
from monitor.core.settings import AnalysisSettings
from monitor.memory.state import ChunkingStatus, OperatorState

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """What `run_cycle` publishes to (`monitor.metrics.registry.MonitorMetrics` implements it)."""

    def publish_chunk(self, evidence: ChunkEvidence) -> None: ...

    def publish_cumulative(
        self, model: str, version: str, estimated: GapSummary, realized_gap: float | None
    ) -> None: ...

    def observe_analysis(
        self, duration_seconds: float, ok: bool, model: str | None = None
    ) -> None: ...

    def set_label_lag(self, model: str, seconds: float) -> None: ...

    def publish_chunking(self, model: str, version: str, status: ChunkingStatus) -> None: ...


class VersionCache:
    """(model, version) -> FittedVersion, fitted lazily from the store's registration."""

    def __init__(self, store: AnalysisStore, chunk_size: int = 500) -> None:
        self._store = store
        self._chunk_size = chunk_size
        self._fitted: dict[tuple[str, str, int], FittedVersion] = {}
        self._sizing: dict[tuple[str, str, float], Sizing] = {}
        self._lock = threading.Lock()
        self.fits = 0  # how many versions were fitted (a fit per version, not per cycle)

    def get(self, model: str, version: str, chunk_size: int | None = None) -> FittedVersion:
        size = chunk_size or self._chunk_size
        key = (model, version, size)
        with self._lock:
            fitted = self._fitted.get(key)
            if fitted is None:
                fitted = FittedVersion.fit(self._registration(model, version), size)
                self._remember_errors(fitted, self._store.chunks(model, version))
                self._fitted[key] = fitted
                self.fits += 1
            return fitted

    @staticmethod
    def _remember_errors(fitted: FittedVersion, stored: list[ChunkEvidence]) -> None:
        """Seed the intervals with the version's stored labelled chunks, so a restarted
        monitor calibrates on the errors it had already seen instead of starting over."""
        for chunk in stored:
            if not chunk.rows or chunk.labelled_rows < LABELLED_SHARE * chunk.rows:
                continue
            for metric, est in chunk.estimated.items():
                residual = residual_of(est, chunk.realized.get(metric))
                if residual is not None:
                    fitted.intervals.observe(chunk.first_seq, metric, residual)

    def sizing(self, model: str, version: str, max_sampling_error: float) -> Sizing:
        """The reference's size and the smallest chunk within the sampling-error bound."""
        key = (model, version, max_sampling_error)
        with self._lock:
            found = self._sizing.get(key)
        if found is not None:
            return found
        found = Sizing.of_reference(self._registration(model, version), max_sampling_error)
        with self._lock:
            self._sizing[key] = found
        return found

    def forget(self, model: str, version: str) -> None:
        with self._lock:
            for key in [k for k in self._fitted if k[:2] == (model, version)]:
                del self._fitted[key]
            for skey in [k for k in self._sizing if k[:2] == (model, version)]:
                del self._sizing[skey]

    def _registration(self, model: str, version: str) -> Registration:
        data = self._store.registration(model, version)
        allowed = {f.alias or name for name, f in Registration.model_fields.items()}
        payload = {k: v for k, v in data.items() if k in allowed}
        payload["artifact"] = base64.b64encode(self._store.artifact(model, version)).decode()
        return Registration.model_validate(payload)


def known_good_version(
    store: AnalysisStore, model: str, live: str, registered: list[str]
) -> str | None:
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
    store: AnalysisStore,
    settings: AnalysisSettings,
    cache: VersionCache,
    metrics: Publisher,
    plans: Mapping[str, ChunkPlan] | None = None,
) -> list[ChunkEvidence]:
    """Analyse every registered version's new and newly labelled chunks; save and publish.

    `plans` (model -> ChunkPlan) comes from the ModelMonitors; a model without one is
    chunked by `settings.chunk_size` rows.
    """
    default = ChunkPlan(rows=settings.chunk_size)
    produced: list[ChunkEvidence] = []
    for model in store.models():
        plan = (plans or {}).get(model, default)
        infos = store.versions(model)
        registered = [v.version for v in infos if v.registered_at]
        for info in infos:
            if not info.registered_at or info.records == 0:
                continue
            started = time.perf_counter()
            try:
                stored = store.chunks(model, info.version)
                labels = LabelChanges.read(store, model, info.version, stored)
                evidence, status = _analyse_version(
                    store, cache, model, info.version, registered, plan, default, stored, labels
                )
            except Exception:
                log.exception("analysis of %s:%s failed", model, info.version)
                metrics.observe_analysis(time.perf_counter() - started, False, model)
                continue
            _save(store, evidence)
            labels.mark_seen(store, saved=bool(evidence))
            OperatorState(store).set_chunking(model, info.version, status)
            metrics.publish_chunking(model, info.version, status)
            for ev in evidence:
                metrics.publish_chunk(ev)
            if evidence:
                merged = {c.chunk_index: c for c in stored} | {e.chunk_index: e for e in evidence}
                history = [merged[k] for k in sorted(merged)]
                metrics.publish_cumulative(
                    model,
                    info.version,
                    estimated_gap_summary(history, settings),
                    cumulative_gap(history, "realized"),
                )
            metrics.observe_analysis(time.perf_counter() - started, True, model)
            produced.extend(evidence)
        _score_candidates(store, cache, model, infos)
        _publish_label_lag(store, metrics, model)
    return produced


def estimated_gap_summary(history: list[ChunkEvidence], settings: AnalysisSettings) -> GapSummary:
    """The cumulative same-rows estimated gap (live - known-good) with its band over the
    chunks: what the progressive-delivery templates read, with its rows and chunks."""
    return summarize(gap_pairs(history, "estimated"), settings.estimate_interval_level)


def _score_candidates(
    store: AnalysisStore, cache: VersionCache, model: str, infos: Sequence[VersionView]
) -> None:
    """Candidates of `model` scored on its baseline's new chunks (never fails the cycle)."""
    try:
        score_candidates(store, cache, model, infos)
    except Exception:
        log.exception("candidate scoring of %s failed", model)


def _publish_label_lag(store: AnalysisStore, metrics: Publisher, model: str) -> None:
    """Age of the oldest record still waiting for its label (0 when all are labelled)."""
    oldest = store.oldest_unlabelled_us(model)
    lag = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1e6)
    metrics.set_label_lag(model, lag)


def _save(store: AnalysisStore, evidence: list[ChunkEvidence]) -> None:
    """One transaction for the whole batch (one fsync, not 200)."""
    store.save_chunks(evidence)


def _analyse_version(
    store: AnalysisStore,
    cache: VersionCache,
    model: str,
    version: str,
    registered: list[str],
    plan: ChunkPlan,
    default: ChunkPlan,
    stored: list[ChunkEvidence],
    labels: LabelChanges | None = None,
) -> tuple[list[ChunkEvidence], ChunkingStatus]:
    sizing = cache.sizing(model, version, plan.max_sampling_error)
    # The size the calculators are fitted for (reference chunks, drift thresholds, the
    # rank-correlation floor): the chunk by rows, else the derived size.
    basis = plan.rows or sizing.derived_rows or default.rows or 500
    stored = sorted(stored, key=lambda c: c.chunk_index)
    labels = labels or LabelChanges(model, version)
    if plan.period is None:
        out, pending = _by_rows(store, cache, model, version, registered, basis, stored, labels)
        needed = basis - pending
    else:
        out, pending = _by_period(
            store, cache, model, version, registered, plan.period, basis, stored, labels
        )
        needed = max(0, basis - pending)
    status = ChunkingStatus(
        mode="rows" if plan.period is None else "period",
        chunk_rows=basis if plan.period is None else None,
        period_seconds=None if plan.period is None else int(plan.period.total_seconds()),
        derived_rows=sizing.derived_rows,
        max_sampling_error=plan.max_sampling_error,
        reference_rows=sizing.reference_rows,
        pending_rows=pending,
        rows_needed=needed,
        problem=sizing.problem,
    )
    return out, status


def _by_rows(
    store: AnalysisStore,
    cache: VersionCache,
    model: str,
    version: str,
    registered: list[str],
    size: int,
    stored: list[ChunkEvidence],
    labels: LabelChanges,
) -> tuple[list[ChunkEvidence], int]:
    """New complete chunks of `size` rows and re-labelled ones; and the rows still pending."""
    next_index = stored[-1].chunk_index + 1 if stored else 0
    after_seq = stored[-1].last_seq if stored else 0
    waiting = store.count_records(model, version, after_seq=after_seq)
    complete = waiting // size
    pending = waiting - complete * size
    window = [
        c
        for c in stored
        if c.rows == size and c.chunk_index >= next_index - RELABEL_LOOKBACK_CHUNKS
    ]
    corrected = labels.changed_chunks(window)
    relabel = [c for c in window if c.labelled_rows < c.rows or c.chunk_index in corrected]
    if complete == 0 and not relabel:
        return [], pending
    live = cache.get(model, version, size)
    kg_version = known_good_version(store, model, version, registered)
    known_good = cache.get(model, kg_version, size) if kg_version else None

    out = _reanalyse_labelled(store, live, known_good, relabel, size, corrected)
    if complete:
        rows = store.records_frame(model, version, after_seq=after_seq, limit=complete * size)
        out += analyse_chunks(live, rows, next_index, known_good, chunk_size=size)
    return out, pending


def _by_period(
    store: AnalysisStore,
    cache: VersionCache,
    model: str,
    version: str,
    registered: list[str],
    period: timedelta,
    size: int,
    stored: list[ChunkEvidence],
    labels: LabelChanges,
) -> tuple[list[ChunkEvidence], int]:
    """Complete periods (by event time) that are new or whose rows or labels grew; and the
    rows of periods still open."""
    period_us = int(period.total_seconds() * US)
    start = period_origin_us(period)
    since = None
    if stored:
        since = start + (stored[-1].chunk_index - RELABEL_LOOKBACK_CHUNKS) * period_us
    rows = store.records_frame(model, version, event_from_us=since)
    if len(rows) == 0:
        return [], 0
    epoch = pd.Timestamp(0, tz="UTC")
    event_us = ((rows["event_time"] - epoch) // pd.Timedelta(microseconds=1)).to_numpy()
    ordinal = (event_us - start) // period_us
    now_ordinal = (int(time.time() * US) - start) // period_us
    cutoff = max(int(ordinal.max()), now_ordinal)
    closed = ordinal < cutoff
    pending = int((~closed).sum())
    frame = rows.assign(_period=ordinal)[closed]
    if frame.empty:
        return [], pending
    frame = frame.sort_values(["_period", "seq"], kind="stable")
    before = {c.chunk_index: c for c in stored}
    counts = frame.groupby("_period").agg(rows=("seq", "size"), labelled=("label", "count"))
    corrected = labels.changed_periods(frame)
    periods = [int(p) for p in counts.index.tolist()]
    tallies = zip(periods, counts["rows"].tolist(), counts["labelled"].tolist(), strict=True)
    changed = [
        p
        for p, n, labelled in tallies
        if p not in before
        or before[p].rows != int(n)
        or before[p].labelled_rows < int(labelled)
        or p in corrected
    ]
    if not changed:
        return [], pending
    frame = frame[frame["_period"].isin(changed)]
    positions = np.searchsorted(np.asarray(changed), frame["_period"].to_numpy())
    live = cache.get(model, version, size)
    kg_version = known_good_version(store, model, version, registered)
    known_good = cache.get(model, kg_version, size) if kg_version else None
    out = analyse_chunks(
        live,
        frame.drop(columns="_period"),
        0,
        known_good,
        groups=(positions, changed),
    )
    return out, pending


def _reanalyse_labelled(
    store: AnalysisStore,
    live: FittedVersion,
    known_good: FittedVersion | None,
    candidates: list[ChunkEvidence],
    size: int,
    corrected: set[int] | None = None,
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
    fresh = analyse_chunks(live, batch, 0, known_good, chunk_size=size)
    return [
        replace(ev, chunk_index=old.chunk_index) for ev, (old, _) in zip(fresh, grown, strict=True)
    ]

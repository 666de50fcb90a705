"""One analysis cycle: new chunks and newly labelled chunks of every version, stored and published.

Each model is chunked as its `ChunkPlan` (`plan.py`) says (plain data the loop reads from
the model's ModelMonitor; without one, `MONITOR_CHUNK_SIZE` rows), its features' drift judged
as the plan's `drift` settings say (`spec.drift.features`, passed to `analyse_chunks`):

- by rows: `rows` consecutive records (by store sequence) of one version; `rows=None` is the
  smallest chunk whose ROC AUC sampling error on the reference is within
  `max_sampling_error`. A chunk is analysed once complete and again when its labels changed:
  more arrived (labels come hours later, so realized performance fills in on a later cycle)
  or a label was corrected (same count, other values: `relabel.py` reads the store's label
  clock).
- by event time: one chunk per `period` from the ModelMonitor's `chunkAnchor`, else the
  model's first event, its `chunk_index` counted from the version's first period (0, 1, ...)
  and its date range in `period_start`/`period_end` (`periods.py`). A period is complete
  once its end has passed or a later period has records; it is re-analysed when its rows
  grew (a late backfill) or its labels changed.

What the analysis found (chunk size, rows waiting for a chunk, rows still needed) is stored
per version as `monitor.memory.state.ChunkingStatus` for the operator and `monitor status`, and
published as metrics, with the version's same-rows gaps (`monitor.core.gap`, counted as the
rollback rules count them). Each version's fitted calculators come from a `VersionCache`
(`versions.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor.analysis.candidates import score_candidates
from monitor.analysis.chunks import analyse_chunks
from monitor.analysis.intervals import DEFAULT_LEVEL
from monitor.analysis.periods import analyse_due, due_periods, iso_us
from monitor.analysis.plan import ChunkPlan
from monitor.analysis.ports import AnalysisStore, VersionView
from monitor.analysis.relabel import RELABEL_LOOKBACK_CHUNKS, LabelChanges
from monitor.analysis.relabelled import reanalyse_labelled
from monitor.analysis.versions import VersionCache
from monitor.core.drift_settings import DriftSettings
from monitor.core.evidence import ChunkEvidence
from monitor.core.gap import GapRules, GapSummary, serving_gap
from monitor.core.settings import MonitorSettings
from monitor.memory.state import ChunkingStatus, OperatorState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CycleOptions:
    """What a cycle needs of the settings: the rows per chunk of a model no ModelMonitor
    names (`MONITOR_CHUNK_SIZE`), and the level of the intervals and of the gap's band
    (`MONITOR_ESTIMATE_INTERVAL_LEVEL`)."""

    chunk_size: int = 500
    interval_level: float = DEFAULT_LEVEL

    @classmethod
    def of(cls, settings: MonitorSettings) -> CycleOptions:
        return cls(settings.analysis.chunk_size, settings.analysis.estimate_interval_level)


class MetricsSink(Protocol):
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

    def set_detail(self, model: str, per_feature: bool, metrics: frozenset[str]) -> None: ...

    def retain_versions(self, model: str, versions: Sequence[str]) -> int: ...


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


@dataclass(frozen=True)
class UnitResult:
    """What analysing one version found: its new evidence, and where its pending work now
    starts (for the queue, `queue.py`): the last record seq inside a chunk, the rows of a
    chunk (None by event time: a period may close without new rows) and the
    label clock the version was checked at."""

    evidence: list[ChunkEvidence]
    after_seq: int = 0
    chunk_rows: int | None = None
    label_clock: int = 0
    failed: bool = False


def run_cycle(
    store: AnalysisStore,
    options: CycleOptions,
    cache: VersionCache,
    metrics: MetricsSink,
    plans: Mapping[str, ChunkPlan] | None = None,
) -> list[ChunkEvidence]:
    """Analyse every registered version's new and newly labelled chunks; save and publish:
    the sum of `analyse_unit` over every version (the queue, `queue.py`, runs them one by one).

    `plans` (model -> ChunkPlan) comes from the ModelMonitors; a model without one is
    chunked by `options.chunk_size` rows.
    """
    produced: list[ChunkEvidence] = []
    for model in store.models():
        plan = (plans or {}).get(model, ChunkPlan(rows=options.chunk_size))
        infos = begin_model(store, metrics, model, plan)
        for info in infos:
            if info.registered_at and info.records:
                result = analyse_unit(store, options, cache, metrics, plan, model, info.version)
                produced.extend(result.evidence)
        finish_model(store, cache, metrics, model, infos)
    return produced


def begin_model(
    store: AnalysisStore, metrics: MetricsSink, model: str, plan: ChunkPlan
) -> Sequence[VersionView]:
    """The model's versions, its series detail set and its expired versions' series dropped."""
    infos = store.versions(model)
    metrics.set_detail(model, plan.per_feature, plan.metrics)
    metrics.retain_versions(model, [v.version for v in infos])  # expired ones go
    return infos


def finish_model(
    store: AnalysisStore,
    cache: VersionCache,
    metrics: MetricsSink,
    model: str,
    infos: Sequence[VersionView] | None = None,
) -> None:
    """After a model's versions: its candidates scored, its label lag published."""
    _score_candidates(store, cache, model, store.versions(model) if infos is None else infos)
    publish_label_lag(store, metrics, model)


def analyse_unit(
    store: AnalysisStore,
    options: CycleOptions,
    cache: VersionCache,
    metrics: MetricsSink,
    plan: ChunkPlan,
    model: str,
    version: str,
) -> UnitResult:
    """One version's new and newly labelled chunks analysed, saved and published (a failure
    is logged and counted, never raised: the other versions go on)."""
    default = ChunkPlan(rows=options.chunk_size)
    started = time.perf_counter()
    try:
        registered = [v.version for v in store.versions(model) if v.registered_at]
        stored = store.chunks(model, version)
        labels = LabelChanges.read(store, model, version, stored)
        evidence, status = _analyse_version(
            store, cache, model, version, registered, plan, default, stored, labels
        )
    except Exception:
        log.exception("analysis of %s:%s failed", model, version)
        metrics.observe_analysis(time.perf_counter() - started, False, model)
        return UnitResult([], failed=True)
    _save(store, evidence)
    labels.mark_seen(store, saved=bool(evidence))
    OperatorState(store).set_chunking(model, version, status)
    metrics.publish_chunking(model, version, status)
    for ev in evidence:
        metrics.publish_chunk(ev)
    if evidence and plan.period is not None:
        # Period chunks may have been renumbered (re-analysis drops the old ones).
        stored = store.chunks(model, version)
    merged = {c.chunk_index: c for c in stored} | {e.chunk_index: e for e in evidence}
    history = [merged[k] for k in sorted(merged)]
    if evidence:
        estimated, realized = published_gaps(history, status, options.interval_level, plan.gaps)
        metrics.publish_cumulative(model, version, estimated, realized.gap)
    metrics.observe_analysis(time.perf_counter() - started, True, model)
    return UnitResult(
        evidence,
        after_seq=max((c.last_seq for c in history), default=0),
        chunk_rows=status.chunk_rows,
        label_clock=labels.clock,
    )


def published_gaps(
    history: list[ChunkEvidence],
    status: ChunkingStatus,
    level: float,
    rules: GapRules | None = None,
) -> tuple[GapSummary, GapSummary]:
    """The version's cumulative same-rows gaps (estimated, realized) since the release, the
    chunks counted as the ModelMonitor's rollback rules (`rules`) count them at the version's
    chunk size: what the progressive-delivery templates gate on, with its band, rows and
    chunks."""
    basis = status.basis_rows
    return (
        serving_gap(history, "estimated", basis, level, rules),
        serving_gap(history, "realized", basis, level, rules),
    )


def _score_candidates(
    store: AnalysisStore, cache: VersionCache, model: str, infos: Sequence[VersionView]
) -> None:
    """Candidates of `model` scored on its baseline's new chunks (never fails the cycle)."""
    try:
        score_candidates(store, cache, model, infos)
    except Exception:
        log.exception("candidate scoring of %s failed", model)


def publish_label_lag(store: AnalysisStore, metrics: MetricsSink, model: str) -> None:
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
    where: tuple[str | None, str | None] = (None, None)
    if plan.period is None:
        out, pending = _by_rows(
            store, cache, model, version, registered, basis, stored, labels, plan.drift
        )
        needed = basis - pending
    else:
        out, pending, where = _by_period(
            store, cache, model, version, registered, plan, basis, stored, labels
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
        anchor=where[0],
        first_period_start=where[1],
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
    drift: DriftSettings | None = None,
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

    out = reanalyse_labelled(store, live, known_good, relabel, size, corrected, drift)
    if complete:
        rows = store.records_frame(model, version, after_seq=after_seq, limit=complete * size)
        out += analyse_chunks(
            live, rows, next_index, known_good, chunk_size=size, drift_settings=drift
        )
    return out, pending


def _by_period(
    store: AnalysisStore,
    cache: VersionCache,
    model: str,
    version: str,
    registered: list[str],
    plan: ChunkPlan,
    size: int,
    stored: list[ChunkEvidence],
    labels: LabelChanges,
) -> tuple[list[ChunkEvidence], int, tuple[str | None, str | None]]:
    """Complete periods (by event time, `periods.py`) that are new or whose rows, labels or
    partial flag changed; the rows of periods still open; the grid's anchor and the
    version's first period."""
    assert plan.period is not None
    frame, changed, ranges, pending, grid, first = due_periods(
        store, model, version, plan.period, plan.anchor, stored, labels
    )
    where: tuple[str | None, str | None] = (None, None)
    if grid is not None:
        where = (iso_us(grid.anchor_us), iso_us(grid.start_us(first)))
    if not changed:
        return [], pending, where
    live = cache.get(model, version, size)
    kg_version = known_good_version(store, model, version, registered)
    known_good = cache.get(model, kg_version, size) if kg_version else None
    return analyse_due(live, known_good, frame, changed, ranges, plan.drift), pending, where


__all__ = [
    "CycleOptions",
    "MetricsSink",
    "UnitResult",
    "VersionCache",
    "analyse_unit",
    "begin_model",
    "finish_model",
    "known_good_version",
    "publish_label_lag",
    "run_cycle",
]

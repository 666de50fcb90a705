"""Chunks by event-time period: which periods of a version are due, numbered from the
version's first period, with their date range and whether they are partial.

Why numbered this way: numbering periods from the Unix epoch (what earlier releases stored)
made 90-day chunks come out as 182-186 and the first one a partial period. Periods now start
at the ModelMonitor's `chunkAnchor`, else at the model's first event (kept in the state, so
the grid never moves), and chunk 0 is the version's first period. A period is complete once
its end has passed or a later period has records; it is re-analysed when its rows grew (a
late backfill), its labels changed, or whether it is partial changed.

Partial: the version's rows cover only part of its first or last period -- its first row
comes later after the period's start (its last row earlier before the period's end, with
no row of the version after it) than the chunk's spacing: the median gap between its rows,
at least the period over its rows. The rules that
judge chunk by chunk leave partial chunks out (monitor/decision/decide.py).

Evidence stored with epoch numbers (no `period_start`), or on another grid (a changed
anchor), and a backfill before the version's first period are handled by re-analysis: the
version's period chunks are dropped and analysed again on the current grid.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from monitor.analysis.chunks import FittedVersion, analyse_chunks
from monitor.analysis.plan import US, PeriodGrid
from monitor.analysis.ports import AnalysisStore
from monitor.analysis.relabel import RELABEL_LOOKBACK_CHUNKS, LabelChanges
from monitor.core.drift_settings import DriftSettings
from monitor.core.evidence import ChunkEvidence
from monitor.core.times import iso, parse_time
from monitor.memory.state import OperatorState

_EPOCH = pd.Timestamp(0, tz="UTC")


def iso_us(moment_us: int) -> str:
    return iso(datetime.fromtimestamp(moment_us / US, tz=UTC))


def to_us(text: str) -> int | None:
    moment = parse_time(text)
    return None if moment is None else round(moment.timestamp() * US)


def known_anchor_us(store: AnalysisStore, model: str, declared: datetime | None) -> int | None:
    """Where the model's periods start: the declared anchor, else the model's first event
    as the analysis first saw it (kept in the state); None before either is known."""
    if declared is not None:
        return round(declared.timestamp() * US)
    return to_us(OperatorState(store).period_anchor(model) or "")


def _event_us(rows: pd.DataFrame) -> np.ndarray:
    return ((rows["event_time"] - _EPOCH) // pd.Timedelta(microseconds=1)).to_numpy(np.int64)


def partial_flags(
    event_us: np.ndarray, ordinal: np.ndarray, grid: PeriodGrid, first: int, last: int | None
) -> dict[int, bool]:
    """Per period ordinal: is it the version's `first` (or `last`, None: the version has
    rows after it) period and covered only in part (see the module docstring)."""
    out: dict[int, bool] = {}
    for k in np.unique(ordinal):
        k = int(k)
        events = np.sort(event_us[ordinal == k])
        gaps = np.diff(events)
        # The chunk's own spacing: its median gap, at least the period over its rows.
        even = grid.period_us / max(len(events), 1)
        tolerance = max(float(np.median(gaps)) if len(gaps) else 0.0, even)
        late_start = k == first and events[0] - grid.start_us(k) > tolerance
        early_end = last is not None and k == last and grid.start_us(k + 1) - events[-1] > tolerance
        out[k] = bool(late_start or early_end)
    return out


def due_periods(
    store: AnalysisStore,
    model: str,
    version: str,
    period: timedelta,
    anchor: datetime | None,
    stored: list[ChunkEvidence],
    labels: LabelChanges,
) -> tuple[pd.DataFrame, list[int], dict[int, tuple[str, str, bool]], int, PeriodGrid | None, int]:
    """The rows of the periods to (re-)analyse, ordered, with `_period` = their chunk index;
    those chunk indexes; per index (period_start, period_end, partial); the rows of periods
    still open; the grid; and the version's first period ordinal."""
    period_us = int(period.total_seconds() * US)
    empty: dict[int, tuple[str, str, bool]] = {}
    rows: pd.DataFrame | None = None
    grid_anchor = known_anchor_us(store, model, anchor)
    if grid_anchor is None:
        rows = store.records_frame(model, version)
        if len(rows) == 0:
            return _NONE, [], empty, 0, None, 0
        grid_anchor = int(_event_us(rows).min())
        OperatorState(store).set_period_anchor(model, iso_us(grid_anchor))
    grid = PeriodGrid(grid_anchor, period_us)
    stored = _current(store, model, version, stored, grid)
    since = None
    first: int | None = None
    if stored:
        first = grid.ordinal_of(to_us(stored[0].period_start) or 0) - stored[0].chunk_index
        last_start = to_us(stored[-1].period_start) or 0
        since = last_start - RELABEL_LOOKBACK_CHUNKS * period_us
    if rows is None:
        rows = store.records_frame(model, version, event_from_us=since)
    elif since is not None:
        rows = rows[_event_us(rows) >= since]
    if len(rows) == 0:
        return _NONE, [], empty, 0, grid, first or 0
    event_us = _event_us(rows)
    ordinal = grid.ordinal(event_us)
    if first is not None and int(ordinal.min()) < first:
        # A backfill before the version's first period: renumber from scratch.
        store.drop_chunks(model, version, [c.chunk_index for c in stored])
        stored, rows = [], store.records_frame(model, version)
        event_us = _event_us(rows)
        ordinal = grid.ordinal(event_us)
    if first is None or not stored:
        first = int(ordinal.min())
    now_ordinal = grid.ordinal_of(int(time.time() * US))
    top = int(ordinal.max())
    cutoff = max(top, now_ordinal)
    closed = ordinal < cutoff
    pending = int((~closed).sum())
    last = top if pending == 0 else None
    flags = partial_flags(event_us[closed], ordinal[closed], grid, first, last)
    frame = rows.assign(_period=ordinal - first)[closed]
    if frame.empty:
        return _NONE, [], empty, pending, grid, first
    frame = frame.sort_values(["_period", "seq"], kind="stable")
    before = {c.chunk_index: c for c in stored}
    counts = frame.groupby("_period").agg(rows=("seq", "size"), labelled=("label", "count"))
    corrected = labels.changed_periods(frame)
    indexes = [int(p) for p in counts.index.tolist()]
    tallies = zip(indexes, counts["rows"].tolist(), counts["labelled"].tolist(), strict=True)
    ranges = {
        i: (
            iso_us(grid.start_us(first + i)),
            iso_us(grid.start_us(first + i + 1)),
            flags.get(first + i, False),
        )
        for i in indexes
    }
    changed = [
        i
        for i, n, labelled in tallies
        if i not in before
        or before[i].rows != int(n)
        or before[i].labelled_rows < int(labelled)
        or before[i].partial != ranges[i][2]
        or i in corrected
    ]
    return frame[frame["_period"].isin(changed)], changed, ranges, pending, grid, first


def analyse_due(
    live: FittedVersion,
    known_good: FittedVersion | None,
    frame: pd.DataFrame,
    changed: list[int],
    ranges: dict[int, tuple[str, str, bool]],
    drift: DriftSettings | None = None,
) -> list[ChunkEvidence]:
    """The evidence of the due periods, each with its chunk index and date range, under the
    ModelMonitor's drift settings."""
    if not changed:
        return []
    positions = np.searchsorted(np.asarray(changed), frame["_period"].to_numpy())
    out = analyse_chunks(
        live,
        frame.drop(columns="_period"),
        0,
        known_good,
        groups=(positions, changed),
        drift_settings=drift,
    )
    return [
        replace(
            ev,
            period_start=ranges[ev.chunk_index][0],
            period_end=ranges[ev.chunk_index][1],
            partial=ranges[ev.chunk_index][2],
        )
        for ev in out
    ]


def _current(
    store: AnalysisStore, model: str, version: str, stored: list[ChunkEvidence], grid: PeriodGrid
) -> list[ChunkEvidence]:
    """The stored period chunks on this grid; the others (numbered from the epoch by an
    earlier release, or on another anchor) are dropped for re-analysis."""
    stale = [
        c
        for c in stored
        if not c.period_start or not grid.aligned(to_us(c.period_start) or grid.anchor_us + 1)
    ]
    if stale:
        store.drop_chunks(model, version, [c.chunk_index for c in stored])
        return []
    return stored


_NONE = pd.DataFrame()

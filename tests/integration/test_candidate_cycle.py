"""Candidates through `run_cycle` on the real store (SQLite and PostgreSQL): scored on the
baseline's chunks, exactly its rows, rescored when labels grow, chunked by rows or by period."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.analysis.cycle import CycleOptions, run_cycle
from monitor.analysis.plan import ChunkPlan
from monitor.analysis.versions import VersionCache
from monitor.core.settings import MonitorSettings
from monitor.memory.candidates import CandidateState
from monitor.metrics.registry import MonitorMetrics
from monitor.store import open_store
from tests.support.monitor import measuring_settings
from tests.support.postgres import (  # noqa: F401 (fixtures)
    Where,
    backend_where_fixture,
    pg_cluster,
    pg_database_url,
)
from tests.support.records import served

MODEL = "rain_forecast"
CHUNK = 500
EARLY = "2000-01-01T00:00:00Z"  # declared before any chunk was analysed


@pytest.fixture()
def settings(tmp_path: Path) -> MonitorSettings:
    return measuring_settings(tmp_path, CHUNK)


@pytest.fixture()
def store(backend_where: Where) -> Any:
    with open_store(backend_where) as st:
        yield st


def setup(store: Any, registrations: dict[str, Any], split: Any, labelled: int) -> list[dict]:
    good = registrations["good"]
    for reg in registrations.values():
        store.register(reg)
    store.put_state(f"known_good/{MODEL}", {"version": good.version})
    records, labels = served(split, good, 0, 3 * CHUNK, "g")
    store.append_records(records)
    store.append_labels(labels[:labelled])
    state = CandidateState(store)
    state.add(MODEL, registrations["retrain"].version, "api", EARLY, "test")
    state.add(MODEL, registrations["no-key-features"].version, "api", EARLY, "test")
    return labels


def test_candidates_are_scored_on_exactly_the_baselines_chunks(
    store, settings, registrations, split
) -> None:
    good, retrain = registrations["good"], registrations["retrain"]
    labels = setup(store, registrations, split, labelled=CHUNK)
    cache = VersionCache(store, CHUNK)

    run_cycle(store, CycleOptions.of(settings), cache, MonitorMetrics())
    base = store.chunks(MODEL, good.version)
    state = CandidateState(store)
    got = state.chunks(MODEL, retrain.version)
    assert [c.chunk_index for c in got] == [c.chunk_index for c in base] == [0, 1, 2]
    for mine, theirs in zip(got, base, strict=True):
        assert (mine.first_seq, mine.last_seq, mine.rows) == (
            theirs.first_seq,
            theirs.last_seq,
            theirs.rows,
        )
        assert mine.baseline_version == good.version
        assert mine.baseline_estimate == theirs.estimated["roc_auc"].value
        assert mine.candidate_estimate is not None
    assert [c.labelled_rows for c in got] == [CHUNK, 0, 0]
    assert got[0].realized_gap is not None and got[1].realized_gap is None
    assert len(state.chunks(MODEL, registrations["no-key-features"].version)) == 3
    # The candidates were fitted once, for the baseline's chunk size.
    fits = cache.fits

    assert run_cycle(store, CycleOptions.of(settings), cache, MonitorMetrics()) == []
    assert state.chunks(MODEL, retrain.version) == got  # nothing new: nothing rescored

    store.append_labels(labels[CHUNK : 2 * CHUNK])  # chunk 1's labels arrive
    run_cycle(store, CycleOptions.of(settings), cache, MonitorMetrics())
    again = state.chunks(MODEL, retrain.version)
    assert [c.labelled_rows for c in again] == [CHUNK, CHUNK, 0]
    assert again[1].realized_gap is not None and again[0] == got[0]
    assert cache.fits == fits


def test_a_new_candidate_is_backfilled_with_the_newest_chunks_only(
    store, settings, registrations, split
) -> None:
    good = registrations["good"]
    setup(store, registrations, split, labelled=0)
    state = CandidateState(store)
    late = registrations["retrain"].version
    state.remove(MODEL, late, "api")
    cache = VersionCache(store, CHUNK)
    # The baseline's 3 chunks, no candidate.
    run_cycle(store, CycleOptions.of(settings), cache, MonitorMetrics())
    state.sync_spec(MODEL, [late], 2, "2999-01-01T00:00:00Z")  # declared after all of them
    run_cycle(store, CycleOptions.of(settings), cache, MonitorMetrics())
    assert [c.chunk_index for c in state.chunks(MODEL, late)] == [1, 2]
    assert all(c.baseline_version == good.version for c in state.chunks(MODEL, late))


def test_by_period_each_candidate_chunk_holds_exactly_its_periods_rows(
    store, settings, registrations, split
) -> None:
    good, retrain = registrations["good"], registrations["retrain"]
    setup(store, registrations, split, labelled=3 * CHUNK)
    plans = {MODEL: ChunkPlan(period=timedelta(weeks=1))}
    run_cycle(store, CycleOptions.of(settings), VersionCache(store, CHUNK), MonitorMetrics(), plans)
    base = {c.chunk_index: c for c in store.chunks(MODEL, good.version)}
    got = CandidateState(store).chunks(MODEL, retrain.version)
    assert len(got) == len(base) >= 2
    for chunk in got:
        assert chunk.rows == base[chunk.chunk_index].rows
        assert chunk.labelled_rows == chunk.rows
        assert chunk.realized_gap is not None and np.isfinite(chunk.realized_gap)

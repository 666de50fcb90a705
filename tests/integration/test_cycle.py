"""run_cycle against the real store on both backends (a SQLite file; a real PostgreSQL
server), with replay records, real models and real metrics."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.analysis.cycle import CycleOptions, known_good_version, run_cycle
from monitor.analysis.versions import VersionCache
from monitor.core.gap import serving_gap
from monitor.core.settings import MonitorSettings
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
GAP = "modelguard_estimated_gap_cumulative"


@pytest.fixture()
def settings(tmp_path: Path) -> MonitorSettings:
    return measuring_settings(tmp_path, CHUNK)


def samples(metrics: MonitorMetrics, name: str) -> list[Any]:
    text = metrics.exposition().decode()
    return [
        s for fam in text_string_to_metric_families(text) for s in fam.samples if s.name == name
    ]


@pytest.fixture()
def store(backend_where: Where) -> Any:
    with open_store(backend_where) as st:
        yield st


def test_cycle_analyses_new_chunks_then_relabelled_ones(store, settings, registrations, split):
    good, worse = registrations["good"], registrations["no-key-features"]
    for reg in (good, registrations["retrain"], worse):
        store.register(reg)
    store.put_state(f"known_good/{MODEL}", {"version": good.version})
    live_records, live_labels = served(split, worse, 0, 1200, "nk")
    good_records, _ = served(split, good, 3000, 500, "g")
    store.append_records(live_records + good_records)
    cache, metrics = VersionCache(store, CHUNK), MonitorMetrics()

    first = run_cycle(store, CycleOptions.of(settings), cache, metrics)
    by_version = {(e.version, e.chunk_index): e for e in first}
    assert sorted(by_version) == sorted([(worse.version, 0), (worse.version, 1), (good.version, 0)])
    assert cache.fits == 2  # the two versions with records; the idle retrain is not fitted
    nk0 = by_version[(worse.version, 0)]
    assert (nk0.first_seq, nk0.last_seq, nk0.rows, nk0.labelled_rows) == (1, 500, 500, 0)
    assert nk0.realized["roc_auc"] is None and nk0.estimated["roc_auc"].value is not None
    assert nk0.known_good_version == good.version and nk0.rank_correlation is not None
    assert nk0.parity_violation_ratio == 0.0
    # The live known-good version is not shadow-scored against itself.
    assert by_version[(good.version, 0)].known_good_version is None
    assert len(store.chunks(MODEL, worse.version)) == 2

    assert run_cycle(store, CycleOptions.of(settings), cache, metrics) == []  # nothing new
    assert cache.fits == 2  # fitted once per version, not per cycle

    store.append_labels(live_labels[:500])  # labels of chunk 0 arrive
    second = run_cycle(store, CycleOptions.of(settings), cache, metrics)
    assert [(e.version, e.chunk_index) for e in second] == [(worse.version, 0)]
    relabelled = second[0]
    assert relabelled.labelled_rows == 500 and relabelled.realized["roc_auc"] is not None
    assert relabelled.known_good_realized["roc_auc"] is not None
    assert relabelled.estimated == nk0.estimated  # label-free parts do not change
    stored = {c.chunk_index: c for c in store.chunks(MODEL, worse.version)}
    assert stored[0].labelled_rows == 500 and stored[1].labelled_rows == 0

    more, _ = served(split, worse, 1200, 300, "nk")
    store.append_records(more)
    third = run_cycle(store, CycleOptions.of(settings), cache, metrics)
    assert [(e.version, e.chunk_index) for e in third] == [(worse.version, 2)]
    # Rows 1001-1200, then (after the good version's 500 records) 300 more: 1701-2000.
    assert (third[0].first_seq, third[0].last_seq) == (stored[1].last_seq + 1, 2000)
    assert third[0].rows == CHUNK and cache.fits == 2

    # The metrics hold the latest chunk of each version, the cumulative gap of the live one.
    est = {
        s.labels["version"]: s.value
        for s in samples(metrics, "modelguard_estimated_performance")
        if s.labels["metric"] == "roc_auc" and s.labels["segment"] == "all"
    }
    latest_good = max(store.chunks(MODEL, good.version), key=lambda c: c.chunk_index)
    assert est == {
        worse.version: pytest.approx(third[0].estimated["roc_auc"].value),
        good.version: pytest.approx(latest_good.estimated["roc_auc"].value),
    }
    # Only the release has a known-good yardstick, hence a gap.
    gaps = {s.labels["version"]: s.value for s in samples(metrics, GAP)}
    expected_gap = serving_gap(store.chunks(MODEL, worse.version), "estimated", CHUNK).gap
    assert expected_gap is not None and np.isfinite(expected_gap)
    assert gaps == {worse.version: pytest.approx(expected_gap)}
    # One observation per version with records per cycle: 2 versions x 4 cycles.
    ok = samples(metrics, "modelguard_analysis_duration_seconds_count")
    assert [s.value for s in ok] == [8]


def test_a_failing_version_does_not_stop_the_others(store, settings, registrations, split):
    good = registrations["good"]
    broken = good.model_copy(
        update={"model": "broken", "artifact": base64.b64encode(b"not a booster").decode()}
    )
    store.register(good)
    store.register(broken)
    good_records, _ = served(split, good, 0, 500, "g")
    broken_records, _ = served(
        split, broken.model_copy(update={"artifact": good.artifact}), 0, 500, "b"
    )
    for rec in broken_records:
        rec["model"] = "broken"
    store.append_records(good_records + broken_records)
    metrics = MonitorMetrics()
    produced = run_cycle(store, CycleOptions.of(settings), VersionCache(store, CHUNK), metrics)
    assert [(e.model, e.chunk_index) for e in produced] == [(MODEL, 0)]
    failures = samples(metrics, "modelguard_analysis_failures_total")
    assert [(s.labels["model"], s.value) for s in failures] == [("broken", 1.0)]
    assert store.chunks("broken") == []


def test_known_good_falls_back_to_the_earliest_earlier_version(store, registrations):
    good, retrain = registrations["good"], registrations["retrain"]
    order = [good.version, retrain.version]
    assert known_good_version(store, MODEL, retrain.version, order) == good.version
    # A later release is never the yardstick of an earlier version.
    assert known_good_version(store, MODEL, good.version, order) is None
    store.put_state(f"known_good/{MODEL}", {"version": good.version})
    assert known_good_version(store, MODEL, good.version, order) is None
    assert known_good_version(store, MODEL, retrain.version, [retrain.version]) is None


def test_a_restarted_monitor_calibrates_on_the_errors_it_had_seen(
    store, settings, registrations, split
):
    good = registrations["good"]
    store.register(good)
    records, labels = served(split, good, 0, 3 * CHUNK, "g")
    store.append_records(records)
    store.append_labels(labels)
    before = VersionCache(store, CHUNK)
    produced = run_cycle(store, CycleOptions.of(settings), before, MonitorMetrics())
    assert [c.labelled_rows for c in produced] == [CHUNK] * 3

    after = VersionCache(store, CHUNK)  # what a restart builds: nothing in memory
    seen = before.get(MODEL, good.version).intervals.history("roc_auc")
    seeded = after.get(MODEL, good.version).intervals.history("roc_auc")
    assert len(seeded) == 3 and seeded == seen
    later = produced[-1].last_seq + 1
    half = [
        c.get(MODEL, good.version).intervals.half_width(later, "roc_auc", 0.03)
        for c in (before, after)
    ]
    assert half[0] is not None and half[0] == pytest.approx(half[1])

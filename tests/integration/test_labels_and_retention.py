"""Corrected labels re-analyse their chunk; retention deletes old records and orphan labels in
bounded batches and keeps evidence and audit; an older database migrates and stays readable.
Real store, real analysis cycle, replay records scored by a real model."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from monitor.analysis.cycle import CycleOptions, run_cycle
from monitor.analysis.versions import VersionCache
from monitor.memory.audit import AuditEntry
from monitor.metrics.registry import MonitorMetrics
from monitor.store import Store
from monitor.store.migrations import MIGRATIONS, SCHEMA_VERSION
from monitor.store.sqlite import SqliteStore
from tests.support.monitor import measuring_settings
from tests.support.records import served

CHUNK = 500


def realized_auc(store: Store, version: str, index: int) -> float | None:
    chunk = {c.chunk_index: c for c in store.chunks("rain_forecast", version)}[index]
    return chunk.realized.get("roc_auc")


def test_flipped_labels_change_the_realized_auc_within_one_cycle(
    tmp_path: Path, registrations: dict[str, Any], split: Any
) -> None:
    good = registrations["good"]
    settings = measuring_settings(tmp_path, CHUNK)
    with SqliteStore(tmp_path / "monitor.db") as store:
        store.register(good)
        shipped, labels = served(split, good, 0, 2 * CHUNK, "relabel")
        store.append_records(shipped)
        store.append_labels(labels)
        cache, metrics = VersionCache(store, CHUNK), MonitorMetrics()
        assert len(run_cycle(store, CycleOptions.of(settings), cache, metrics)) == 2
        before = realized_auc(store, good.version, 0)
        other = realized_auc(store, good.version, 1)
        assert before is not None and before > 0.6
        # Nothing changed: nothing is re-analysed.
        assert run_cycle(store, CycleOptions.of(settings), cache, metrics) == []
        # The same labels again (a retry): still nothing to recompute.
        store.append_labels(labels[:CHUNK])
        assert run_cycle(store, CycleOptions.of(settings), cache, metrics) == []

        flipped = [{**lab, "label": 1 - lab["label"]} for lab in labels[:CHUNK]]
        store.append_labels(flipped)  # same count of labelled rows, every value corrected
        again = run_cycle(store, CycleOptions.of(settings), cache, metrics)
        assert [(e.version, e.chunk_index) for e in again] == [(good.version, 0)]
        after = realized_auc(store, good.version, 0)
        assert after is not None and abs(after - (1 - before)) < 1e-9
        assert realized_auc(store, good.version, 1) == other  # chunk 1 untouched
        assert run_cycle(store, CycleOptions.of(settings), cache, metrics) == []


def test_retention_deletes_old_rows_in_batches_and_keeps_evidence_and_audit(
    tmp_path: Path, registrations: dict[str, Any], split: Any
) -> None:
    good = registrations["good"]
    settings = measuring_settings(tmp_path, CHUNK)
    path = tmp_path / "monitor.db"
    with SqliteStore(path) as store:
        store.register(good)
        store.append_audit(AuditEntry("note", "rain_forecast"))
        old, old_labels = served(split, good, 0, 2 * CHUNK, "old")
        store.append_records(old)
        store.append_labels(old_labels)
        store.append_labels([{"prediction_id": "never-served", "label": 1}])  # an orphan
        assert (
            len(
                run_cycle(
                    store, CycleOptions.of(settings), VersionCache(store, CHUNK), MonitorMetrics()
                )
            )
            == 2
        )
        day = 86_400 * 1_000_000
        t0 = 1_000 * day
        # The first pass only marks the arrival clock: nothing is a day old yet.
        assert store.expire(86_400, batch_rows=300, now_us=t0).records == 0
        new, new_labels = served(split, good, 2 * CHUNK, CHUNK, "new")
        store.append_records(new)
        store.append_labels(new_labels)

        done = store.expire(86_400, batch_rows=300, now_us=t0 + day + 1)
        assert (done.records, done.labels) == (2 * CHUNK, 2 * CHUNK)
        assert done.batches >= 4  # 1,000 rows in transactions of at most 300
        assert store.count_records("rain_forecast", good.version) == CHUNK
        assert store.label_coverage("rain_forecast", good.version) == (CHUNK, CHUNK)
        # Evidence and audit are kept; analysis goes on with the rows that are left.
        assert len(store.chunks("rain_forecast", good.version)) == 2
        assert [e["kind"] for e in store.audit("rain_forecast")][:1] == ["note"]
        # The orphan label was received just now (real clock): kept until it is old too.
        assert done.orphan_labels == 0
        late = store.expire(0, batch_rows=300)
        assert late.orphan_labels == 1


def test_database_stops_growing_under_retention(
    tmp_path: Path, registrations: dict[str, Any], split: Any
) -> None:
    """Ten rounds of 2,000 records, each expired after the next arrived: the file ends near
    the size two rounds take, not ten (freed pages are reused)."""
    good = registrations["good"]
    path = tmp_path / "monitor.db"
    day = 86_400 * 1_000_000
    with SqliteStore(path) as store:
        store.register(good)
        sizes = []
        rows, labels = served(split, good, 0, 2_000, "round")
        for i in range(10):
            store.append_records(
                [{**r, "prediction_id": f"{i}-{r['prediction_id']}"} for r in rows]
            )
            store.append_labels(
                [{**lab, "prediction_id": f"{i}-{lab['prediction_id']}"} for lab in labels]
            )
            store.expire(86_400, batch_rows=1_000, now_us=(i + 1) * day + 1)
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            sizes.append(path.stat().st_size)
        assert store.count_records("rain_forecast", good.version) <= 4_000
    assert sizes[-1] <= 1.3 * sizes[2], sizes


def test_a_schema_2_database_migrates_and_reads_as_before(
    tmp_path: Path, registrations: dict[str, Any], split: Any
) -> None:
    good = registrations["good"]
    path = tmp_path / "monitor.db"
    with SqliteStore(path) as store:
        store.register(good)
        shipped, labels = served(split, good, 0, CHUNK, "legacy")
        store.append_records(shipped)
        store.append_labels(labels)
    # Rebuild it as a monitor of schema 2 wrote it: same rows, no migration-3 columns.
    legacy = tmp_path / "legacy.db"
    with sqlite3.connect(legacy) as conn:
        for migration in MIGRATIONS[:2]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (2)")
        conn.execute(f"ATTACH '{path}' AS new")
        for table in ("model_versions", "records", "state", "audit"):
            conn.execute(f"INSERT INTO {table} SELECT * FROM new.{table}")
        conn.execute(
            "INSERT INTO labels SELECT prediction_id, label, label_ts_us, received_at"
            " FROM new.labels"
        )
    with SqliteStore(legacy) as store:
        (version,) = store._writer.execute("SELECT max(version) FROM schema_version").fetchone()
        assert version == SCHEMA_VERSION
        frame = store.records_frame("rain_forecast", good.version)
        assert len(frame) == CHUNK and int(frame["label"].notna().sum()) == CHUNK
        settings = measuring_settings(tmp_path, CHUNK)
        cache, metrics = VersionCache(store, CHUNK), MonitorMetrics()
        assert len(run_cycle(store, CycleOptions.of(settings), cache, metrics)) == 1
        store.append_labels([{**labels[0], "label": 1 - labels[0]["label"]}])
        assert [
            e.chunk_index for e in run_cycle(store, CycleOptions.of(settings), cache, metrics)
        ] == [0]

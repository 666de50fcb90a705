"""The monitor's durable state: SQLite in WAL mode on the monitor's volume.

Why SQLite: one monitor replica owns the data (the Deployment is `Recreate`), the volumes are
small, and WAL gives concurrent readers while one writer appends. `synchronous=FULL` makes
every commit fsync the WAL, so an acknowledged write survives a crash of the process or the
node. All writes go through one connection guarded by a lock; each reading thread gets its
own connection, so analysis reading a window never blocks ingest.

The interface is the one in docs/contracts.md §4; analysis, the operator, the API and the CLI
all use it, and a PostgreSQL store could later sit behind the same methods. This module keeps
the connections, record/label ingest and reads; registrations and the versions overview are
in `versions.py`, operator state and audit in `state.py`, chunk evidence in `chunks.py`,
retention in `retention.py`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from monitor.core.times import now_iso
from monitor.store.commit import GroupCommit
from monitor.store.evidence import ChunkStore
from monitor.store.frames import records_to_frame
from monitor.store.memory import StateAndAudit
from monitor.store.migrations import migrate
from monitor.store.retention import Retention
from monitor.store.types import (
    IngestResult,
    LabelResult,
    features_json,
    to_epoch_us,
)
from monitor.store.versions import ModelVersions

_IN_CHUNK = 500  # ids per `IN (...)` query
SEP = (",", ":")  # compact JSON
WAL_CHECKPOINT_PAGES = 16_384  # ~64 MB of 4 KiB pages
_FRAME_BATCH_ROWS = 50_000  # rows turned into a DataFrame at a time


class Store(StateAndAudit, ModelVersions, ChunkStore, Retention):
    """Thread-safe access to one monitor database file."""

    # AUTOINCREMENT keeps the highest sequence ever assigned, also once its rows are deleted.
    top_seq_sql = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0)"

    def __init__(self, path: str | Path, *, busy_timeout_seconds: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = busy_timeout_seconds
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        # Checkpoint every ~64 MB of WAL instead of SQLite's 4 MB: the unique index on
        # random prediction ids dirties about one page per record, and rarer checkpoints
        # write each hot page once instead of many times (measured: +40% ingest at 300k rows).
        self._writer.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        self._writer.execute(f"PRAGMA journal_size_limit={WAL_CHECKPOINT_PAGES * 4096}")
        migrate(self._writer)
        self._group = GroupCommit(self._writer, self._write_lock)
        self._closed = False

    @property
    def location(self) -> str:
        """Where the data lives, safe to print (no credentials)."""
        return str(self.path)

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous=FULL")  # fsync at every commit: acks are durable
        conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("store is closed")
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _write_grouped(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Like `_write`, but concurrent callers may share one transaction (store_commit)."""
        if self._closed:
            raise RuntimeError("store is closed")
        return self._group.run(work)

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `work` in one IMMEDIATE transaction on the writer: all of it or nothing."""
        with self._write_lock:
            if self._closed:
                raise RuntimeError("store is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def close(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                for conn in self._readers:
                    conn.close()
                self._readers.clear()
            self._writer.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inference records and labels -----------------------------------------------------

    def append_records(self, records: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """Store records; a `prediction_id` seen before is ignored (idempotent retries)."""
        result = self.append_records_detailed(records)
        return result.accepted, result.duplicates

    def append_records_detailed(self, records: Sequence[Mapping[str, Any]]) -> IngestResult:
        groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for rec in records:
            row = (
                str(rec["prediction_id"]),
                str(rec["model"]),
                str(rec["version"]),
                to_epoch_us(rec["timestamp"]),
                features_json(rec["features"]),
                float(rec["probability"]),
                int(rec["predicted_class"]),
                to_epoch_us(rec["event_time"]) if rec.get("event_time") is not None else None,
            )
            groups.setdefault((row[1], row[2]), []).append(row)

        def work(conn: sqlite3.Connection) -> IngestResult:
            result = IngestResult()
            for (model, version), rows in groups.items():
                (last_seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()
                before = conn.total_changes
                conn.executemany(
                    "INSERT OR IGNORE INTO records (prediction_id, model, version, ts_us,"
                    " features, probability, predicted_class, event_ts_us)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                added = conn.total_changes - before
                result.accepted += added
                result.duplicates += len(rows) - added
                if not added:
                    continue
                result.accepted_by_version[(model, version)] = added
                # Labels that were waiting for these new records (they arrived first).
                (joined,) = conn.execute(
                    "SELECT count(*) FROM records r JOIN labels l"
                    " ON l.prediction_id = r.prediction_id WHERE r.seq > ?",
                    (last_seq,),
                ).fetchone()
                if joined:
                    by_model = result.labels_joined_by_model
                    by_model[model] = by_model.get(model, 0) + int(joined)
            return result

        return self._write_grouped(work) if groups else IngestResult()

    def append_labels(self, labels: Sequence[Mapping[str, Any]]) -> int:
        """Store ground truth by prediction id; before or after its record; a repeat overwrites."""
        return self.append_labels_detailed(labels).accepted

    def append_labels_detailed(self, labels: Sequence[Mapping[str, Any]]) -> LabelResult:
        received = now_iso()
        rows = [
            (
                str(lab["prediction_id"]),
                int(lab["label"]),
                to_epoch_us(lab["timestamp"]) if lab.get("timestamp") is not None else None,
                received,
            )
            for lab in labels
        ]

        def work(conn: sqlite3.Connection) -> LabelResult:
            # The label clock (migration 3): new labels and changed values get max + 1, so
            # the analysis sees which chunks' labels changed since it last looked; a repeat
            # of the same value keeps its stamp (nothing to recompute).
            (clock,) = conn.execute(
                "SELECT coalesce(max(updated_seq), 0) + 1 FROM labels"
            ).fetchone()
            conn.executemany(
                "INSERT INTO labels (prediction_id, label, label_ts_us, received_at, updated_seq)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (prediction_id) DO UPDATE SET"
                " updated_seq = CASE WHEN labels.label = excluded.label"
                " THEN labels.updated_seq ELSE excluded.updated_seq END,"
                " label = excluded.label, label_ts_us = excluded.label_ts_us,"
                " received_at = excluded.received_at",
                [(*r, int(clock)) for r in rows],
            )
            joined: dict[str, int] = {}
            ids = [r[0] for r in rows]
            for start in range(0, len(ids), _IN_CHUNK):
                part = ids[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(part))
                for model, n in conn.execute(
                    f"SELECT model, count(*) FROM records WHERE prediction_id IN ({marks})"
                    " GROUP BY model",
                    part,
                ):
                    joined[model] = joined.get(model, 0) + int(n)
            return LabelResult(accepted=len(rows), joined_by_model=joined)

        return self._write_grouped(work) if rows else LabelResult()

    def label_clock(self) -> int:
        """The label clock now: the highest `updated_seq` (0: none changed since migration 3)."""
        (n,) = self._reader().execute("SELECT coalesce(max(updated_seq), 0) FROM labels").fetchone()
        return int(n)

    def label_changes(self, model: str, version: str, since: int) -> list[tuple[int, int]]:
        """(record seq, label clock) of the version's records whose label changed after `since`."""
        return [
            (int(seq), int(stamp))
            for seq, stamp in self._reader().execute(
                "SELECT r.seq, l.updated_seq FROM labels l JOIN records r"
                " ON r.prediction_id = l.prediction_id"
                " WHERE l.updated_seq > ? AND r.model = ? AND r.version = ?",
                (since, model, version),
            )
        ]

    def chunk_labels_seen(self, model: str, version: str) -> dict[int, int]:
        """chunk_index -> the label clock its chunk was last analysed or checked at."""
        return {
            int(index): int(seen)
            for index, seen in self._reader().execute(
                "SELECT chunk_index, labels_seen FROM chunks WHERE model = ? AND version = ?",
                (model, version),
            )
        }

    def mark_labels_seen(self, model: str, version: str, clock: int) -> None:
        """Every chunk of the version has been checked against the labels up to `clock`."""
        self._write(
            lambda conn: conn.execute(
                "UPDATE chunks SET labels_seen = ? WHERE model = ? AND version = ?"
                " AND labels_seen < ?",
                (clock, model, version, clock),
            )
        )

    def count_records(self, model: str, version: str, after_seq: int = 0) -> int:
        (n,) = (
            self._reader()
            .execute(
                "SELECT count(*) FROM records WHERE model = ? AND version = ? AND seq > ?",
                (model, version, after_seq),
            )
            .fetchone()
        )
        return int(n)

    def oldest_unlabelled_us(self, model: str) -> int | None:
        """Timestamp (µs) of the oldest record of `model` still waiting for its label."""
        row = (
            self._reader()
            .execute(
                "SELECT min(r.ts_us) FROM records r LEFT JOIN labels l"
                " ON l.prediction_id = r.prediction_id WHERE r.model = ? AND l.label IS NULL",
                (model,),
            )
            .fetchone()
        )
        return None if row is None or row[0] is None else int(row[0])

    def label_coverage(self, model: str, version: str) -> tuple[int, int]:
        """(records, records with a label) for one version."""
        row = (
            self._reader()
            .execute(
                "SELECT count(*), count(l.label) FROM records r LEFT JOIN labels l"
                " ON l.prediction_id = r.prediction_id WHERE r.model = ? AND r.version = ?",
                (model, version),
            )
            .fetchone()
        )
        return int(row[0]), int(row[1])

    def records_frame(
        self,
        model: str,
        version: str,
        after_seq: int = 0,
        limit: int | None = None,
        event_from_us: int | None = None,
    ) -> pd.DataFrame:
        """Records of one version in arrival order with their labels (nullable) joined.

        Columns: seq, prediction_id, timestamp (received, UTC), event_time (the record's
        event time, default its receive time), probability, predicted_class, label (Int64,
        <NA> until it arrives), then one column per feature as received. `event_from_us`
        keeps only records whose event time is at or after it.
        """
        sql = (
            "SELECT r.seq, r.prediction_id, r.ts_us, coalesce(r.event_ts_us, r.ts_us),"
            " r.probability, r.predicted_class, l.label, r.features FROM records r"
            " LEFT JOIN labels l ON l.prediction_id = r.prediction_id"
            " WHERE r.model = ? AND r.version = ? AND r.seq > ?"
        )
        params: list[Any] = [model, version, after_seq]
        if event_from_us is not None:
            sql += " AND coalesce(r.event_ts_us, r.ts_us) >= ?"
            params.append(int(event_from_us))
        sql += " ORDER BY r.seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        names = self._feature_names(model, version)
        # Batches bound the peak memory: Python tuples and dicts of one batch at a time.
        parts = [records_to_frame(rows, names) for rows in self._row_batches(sql, params)]
        if len(parts) <= 1:
            return parts[0] if parts else records_to_frame([], names)
        return pd.concat(parts, ignore_index=True)

    def _row_batches(self, sql: str, params: Sequence[Any]) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of one read, `_FRAME_BATCH_ROWS` at a time."""
        cursor = self._reader().execute(sql, params)
        while rows := cursor.fetchmany(_FRAME_BATCH_ROWS):
            yield rows

    def _feature_names(self, model: str, version: str) -> list[str]:
        row = (
            self._reader()
            .execute(
                "SELECT registration FROM model_versions WHERE model = ? AND version = ?",
                (model, version),
            )
            .fetchone()
        )
        if row is None:
            return []
        schema = json.loads(row[0]).get("schema", {})
        return [f["name"] for f in schema.get("features", [])]

"""Inference records and labels as the analysis reads them, a part of both stores.

What both backends share: label ingest (one upsert that keeps the label clock), the reads
of records, labels and the label clock, and the frame of a version's records. Record ingest
(`append_records_detailed`) is each backend's own, because the fast statement differs, and
so is `_row_batches`, how a long read is fetched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from monitor.core.times import now_iso
from monitor.store.backend import Connection, Database
from monitor.store.frames import records_to_frame
from monitor.store.types import LabelResult, to_epoch_us

IN_CHUNK = 500  # ids per `IN (...)` query


class RecordsAndLabels:
    """Mixed into both stores; its methods run on a `Database` (the connections)."""

    def append_records(self: Database, records: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """Store records; a `prediction_id` seen before is ignored (idempotent retries)."""
        result = self.append_records_detailed(records)
        return result.accepted, result.duplicates

    def append_labels(self: Database, labels: Sequence[Mapping[str, Any]]) -> int:
        """Store ground truth by prediction id; before or after its record; a repeat overwrites."""
        return self.append_labels_detailed(labels).accepted

    def append_labels_detailed(self: Database, labels: Sequence[Mapping[str, Any]]) -> LabelResult:
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

        def work(conn: Connection) -> LabelResult:
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
            for start in range(0, len(ids), IN_CHUNK):
                part = ids[start : start + IN_CHUNK]
                marks = ",".join("?" * len(part))
                for model, n in conn.execute(
                    f"SELECT model, count(*) FROM records WHERE prediction_id IN ({marks})"
                    " GROUP BY model",
                    part,
                ):
                    joined[model] = joined.get(model, 0) + int(n)
            return LabelResult(accepted=len(rows), joined_by_model=joined)

        return self._write_grouped(work) if rows else LabelResult()

    def record_models(self: Database, prediction_ids: Sequence[str]) -> dict[str, str]:
        """prediction_id -> the model of its stored record (ids without a record left out):
        what a label's model is, for the per-model credentials check before a label write."""
        found: dict[str, str] = {}
        ids = list(dict.fromkeys(prediction_ids))
        conn = self._reader()
        for start in range(0, len(ids), IN_CHUNK):
            part = ids[start : start + IN_CHUNK]
            marks = ",".join("?" * len(part))
            for pid, model in conn.execute(
                f"SELECT prediction_id, model FROM records WHERE prediction_id IN ({marks})", part
            ):
                found[str(pid)] = str(model)
        return found

    def label_clock(self: Database) -> int:
        """The label clock now: the highest `updated_seq` (0: none changed since migration 3)."""
        (n,) = self._reader().execute("SELECT coalesce(max(updated_seq), 0) FROM labels").fetchone()
        return int(n)

    def label_changes(
        self: Database, model: str, version: str, since: int
    ) -> list[tuple[int, int]]:
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

    def chunk_labels_seen(self: Database, model: str, version: str) -> dict[int, int]:
        """chunk_index -> the label clock its chunk was last analysed or checked at."""
        return {
            int(index): int(seen)
            for index, seen in self._reader().execute(
                "SELECT chunk_index, labels_seen FROM chunks WHERE model = ? AND version = ?",
                (model, version),
            )
        }

    def mark_labels_seen(self: Database, model: str, version: str, clock: int) -> None:
        """Every chunk of the version has been checked against the labels up to `clock`."""
        self._write(
            lambda conn: conn.execute(
                "UPDATE chunks SET labels_seen = ? WHERE model = ? AND version = ?"
                " AND labels_seen < ?",
                (clock, model, version, clock),
            )
        )

    def count_records(self: Database, model: str, version: str, after_seq: int = 0) -> int:
        (n,) = (
            self._reader()
            .execute(
                "SELECT count(*) FROM records WHERE model = ? AND version = ? AND seq > ?",
                (model, version, after_seq),
            )
            .fetchone()
        )
        return int(n)

    def oldest_unlabelled_us(self: Database, model: str) -> int | None:
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

    def label_coverage(self: Database, model: str, version: str) -> tuple[int, int]:
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
        self: Database,
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

    def _feature_names(self: Database, model: str, version: str) -> list[str]:
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

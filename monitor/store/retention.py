"""Retention, a part of both stores: old records and labels are deleted in batches.

Chunk evidence, state and the audit log are kept. Only how the highest sequence is read
differs by backend (`Dialect.top_seq_sql`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from monitor.core.times import iso
from monitor.store.backend import Connection, Database
from monitor.store.types import Expired


class Retention:
    """Mixed into both stores; its methods run on a `Database` (the connections)."""

    def expire(
        self: Database,
        max_age_seconds: float,
        *,
        batch_rows: int = 5_000,
        now_us: int | None = None,
    ) -> Expired:
        """Delete records (with their labels) that arrived more than `max_age_seconds` ago,
        and labels without a record received that long ago, in transactions of at most
        `batch_rows` rows each (ingest interleaves between them). Chunk evidence, state
        and the audit log are kept.

        Arrival time is read from `seq_marks`: each call first records (now, highest seq),
        so a record is old once a mark at least `max_age_seconds` old covers its seq (the
        granularity is the interval between calls). Freed pages are reused by new rows, so
        the file stops growing at about the retained volume.
        """
        now = int(time.time() * 1_000_000) if now_us is None else int(now_us)
        cutoff_us = now - int(max_age_seconds * 1_000_000)

        top_seq_sql = self.dialect.top_seq_sql

        def mark(conn: Connection) -> int:
            (top,) = conn.execute(top_seq_sql).fetchone() or (0,)
            conn.execute(
                "INSERT INTO seq_marks (at_us, seq) VALUES (?, ?)"
                " ON CONFLICT (at_us) DO UPDATE SET seq = excluded.seq",
                (now, int(top)),
            )
            row = conn.execute(
                "SELECT at_us, seq FROM seq_marks WHERE at_us <= ? ORDER BY at_us DESC LIMIT 1",
                (cutoff_us,),
            ).fetchone()
            if row is None:
                return 0
            conn.execute("DELETE FROM seq_marks WHERE at_us < ?", (int(row[0]),))
            return int(row[1])

        upto = self._write(mark)
        done = Expired()
        while upto:

            def records_batch(conn: Connection) -> tuple[int, int]:
                pick = "SELECT prediction_id FROM records WHERE seq <= ? ORDER BY seq LIMIT ?"
                labels = conn.execute(
                    f"DELETE FROM labels WHERE prediction_id IN ({pick})", (upto, batch_rows)
                ).rowcount
                gone = conn.execute(
                    "DELETE FROM records WHERE seq IN"
                    " (SELECT seq FROM records WHERE seq <= ? ORDER BY seq LIMIT ?)",
                    (upto, batch_rows),
                ).rowcount
                return int(gone), int(labels)

            gone, labels = self._write(records_batch)
            done.records += gone
            done.labels += labels
            done.batches += 1
            if gone < batch_rows:
                break
        received_before = iso(datetime.fromtimestamp(cutoff_us / 1e6, UTC), "microseconds")
        while True:
            orphans = self._write(
                lambda conn: (
                    conn.execute(
                        "DELETE FROM labels WHERE prediction_id IN (SELECT l.prediction_id"
                        " FROM labels l WHERE l.received_at < ? AND NOT EXISTS (SELECT 1"
                        " FROM records r WHERE r.prediction_id = l.prediction_id) LIMIT ?)",
                        (received_before, batch_rows),
                    ).rowcount
                )
            )
            done.orphan_labels += int(orphans)
            done.batches += 1
            if orphans < batch_rows:
                break
        return done

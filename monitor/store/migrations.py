"""The monitor database's tables and their migrations (SQLite).

Kept apart from `SqliteStore` (sqlite.py) so the layout of the data on the PVC can be read in
one place. Each migration is a list of statements applied in one transaction;
`schema_version` records the highest applied, so opening an older database upgrades it and
opening a newer one fails loudly instead of writing rows an older monitor does not
understand. Migrations only add (tables, nullable columns): no stored row is rewritten or
lost.
"""

from __future__ import annotations

import sqlite3

from monitor.store.fits import FITTED_TABLE
from monitor.store.sharing import LEASE_TABLES

MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        # One row per registered model version. `registration` is the payload without its
        # artifact and reference (kept in their own columns: big, and read separately).
        """CREATE TABLE model_versions (
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            registration TEXT NOT NULL,
            reference TEXT NOT NULL,
            artifact BLOB NOT NULL,
            content_sha256 TEXT NOT NULL,
            registered_at TEXT NOT NULL,
            PRIMARY KEY (model, version)
        )""",
        # Inference records as the predictor served them; `seq` is the arrival order that
        # chunks are cut by. Timestamps are integer microseconds since the epoch (UTC): cheap
        # to compare, cheap to turn into a pandas column.
        """CREATE TABLE records (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            prediction_id TEXT NOT NULL UNIQUE,
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            ts_us INTEGER NOT NULL,
            features TEXT NOT NULL,
            probability REAL NOT NULL,
            predicted_class INTEGER NOT NULL
        )""",
        "CREATE INDEX records_by_version ON records (model, version, seq)",
        # Ground truth, keyed by prediction id only: it may arrive before its record.
        """CREATE TABLE labels (
            prediction_id TEXT PRIMARY KEY,
            label INTEGER NOT NULL,
            label_ts_us INTEGER,
            received_at TEXT NOT NULL
        )""",
        """CREATE TABLE chunks (
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            chunk_index INTEGER NOT NULL,
            evidence TEXT NOT NULL,
            saved_at TEXT NOT NULL,
            PRIMARY KEY (model, version, chunk_index)
        )""",
        # The operator's durable state (known-good, rejections, incidents, pending actions).
        """CREATE TABLE state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        # Append-only: nothing in the code updates or deletes from it.
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            model TEXT,
            kind TEXT,
            entry TEXT NOT NULL
        )""",
        "CREATE INDEX audit_by_model ON audit (model, id)",
    ],
    [
        # 2: the event time a record may carry (NULL: its receive time `ts_us` is its event
        # time, which is what every record stored before this migration reads as).
        "ALTER TABLE records ADD COLUMN event_ts_us INTEGER",
    ],
    [
        # 3: label changes and retention. `labels.updated_seq` is a label clock: a write that
        # changes a label stamps it with max + 1 (rows stored before read as 0, "unchanged
        # since"); `chunks.labels_seen` is the clock a chunk was last analysed or checked
        # at, so a corrected label (same count, other value) re-analyses its chunk.
        "ALTER TABLE labels ADD COLUMN updated_seq INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX labels_by_update ON labels (updated_seq)",
        "ALTER TABLE chunks ADD COLUMN labels_seen INTEGER NOT NULL DEFAULT 0",
        # Arrival clock for retention: (time, highest record seq then), one row per
        # retention pass; records at or below the seq of a mark older than the retention
        # age are deleted. No per-record column, so ingest pays nothing for it.
        "CREATE TABLE seq_marks (at_us INTEGER PRIMARY KEY, seq INTEGER NOT NULL)",
    ],
    [
        # 4: fitted analysis state (fits.py): a version's fitted calculators, pickled by the
        # monitor, keyed by the fingerprint of everything the fit depends on.
        FITTED_TABLE.format(blob="BLOB"),
    ],
    # 5: per-model analysis leases and the replicas' heartbeats (sharing.py).
    list(LEASE_TABLES),
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer monitor; refusing to touch it."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to `SCHEMA_VERSION`; returns the version found before."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    found = int(row[0]) if row and row[0] is not None else 0
    if found > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"database schema version {found} is newer than this monitor's {SCHEMA_VERSION}"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")  # the connection is in autocommit mode
        try:
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found

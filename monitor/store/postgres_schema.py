"""The monitor database's tables and their migrations on PostgreSQL.

The same layout as `migrations.py` (SQLite) at its current version, in PostgreSQL types:
integer microseconds are BIGINT, the artifact is BYTEA, `records.seq` is an identity column
(the arrival order chunks are cut by). Versioned the same way: `schema_version` records the
highest migration applied, a newer database is refused, migrations only add. Start-up takes
an advisory lock so that two monitors starting together do not migrate twice.
"""

from __future__ import annotations

from typing import Any

import psycopg

from monitor.store.fits import FITTED_TABLE
from monitor.store.migrations import SchemaTooNewError
from monitor.store.sharing import LEASE_TABLES

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE model_versions (
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            registration TEXT NOT NULL,
            reference TEXT NOT NULL,
            artifact BYTEA NOT NULL,
            content_sha256 TEXT NOT NULL,
            registered_at TEXT NOT NULL,
            PRIMARY KEY (model, version)
        )""",
        """CREATE TABLE records (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            prediction_id TEXT NOT NULL UNIQUE,
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            ts_us BIGINT NOT NULL,
            features TEXT NOT NULL,
            probability DOUBLE PRECISION NOT NULL,
            predicted_class INTEGER NOT NULL,
            event_ts_us BIGINT
        )""",
        "CREATE INDEX records_by_version ON records (model, version, seq)",
        """CREATE TABLE labels (
            prediction_id TEXT PRIMARY KEY,
            label INTEGER NOT NULL,
            label_ts_us BIGINT,
            received_at TEXT NOT NULL,
            updated_seq BIGINT NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX labels_by_update ON labels (updated_seq)",
        """CREATE TABLE chunks (
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            chunk_index INTEGER NOT NULL,
            evidence TEXT NOT NULL,
            saved_at TEXT NOT NULL,
            labels_seen BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (model, version, chunk_index)
        )""",
        """CREATE TABLE state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE audit (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at TEXT NOT NULL,
            model TEXT,
            kind TEXT,
            entry TEXT NOT NULL
        )""",
        "CREATE INDEX audit_by_model ON audit (model, id)",
        "CREATE TABLE seq_marks (at_us BIGINT PRIMARY KEY, seq BIGINT NOT NULL)",
    ],
    [FITTED_TABLE.format(blob="BYTEA")],  # 2: as SQLite's migration 4 (fits.py)
    list(LEASE_TABLES),  # 3: as SQLite's migration 5 (sharing.py)
]

SCHEMA_VERSION = len(MIGRATIONS)
MIGRATION_LOCK = 7_212_001  # pg_advisory_xact_lock key held while migrating


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Bring the database to `SCHEMA_VERSION` (one transaction); returns the version found.
    `conn` is not in a transaction."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        found = int(row[0]) if row and row[0] is not None else 0
        if found > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"database schema version {found} is newer than this monitor's {SCHEMA_VERSION}"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    return found

"""Fitted analysis state, a part of both stores: a version's fitted calculators as bytes.

The analysis (monitor/analysis/versions.py) fits a version's calculators once and saves them
here keyed by (model, version, fingerprint), the fingerprint naming everything the fit
depends on (the registration's content digest, the chunk size, the interval level, the
library versions); a restarted monitor or another replica loads them instead of refitting.
A changed input is a new fingerprint, so a stale fit is never read; each version keeps its
`KEEP_PER_VERSION` most recent fingerprints.

The bytes are opaque here. Trust: the analysis unpickles them, so whoever can write this
table can run code in the monitor -- the same people who can already rewrite every record,
decision and the known-good version in this database. Only the monitor writes it (no API
route does); the digest column catches a torn or corrupted row, not a forged one.
"""

from __future__ import annotations

import hashlib

from monitor.core.times import now_iso
from monitor.store.backend import Connection, Database
from monitor.store.types import UnknownVersionError

KEEP_PER_VERSION = 4  # fingerprints kept per version (chunk sizes, library upgrades)

FITTED_TABLE = """CREATE TABLE fitted_states (
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state {blob} NOT NULL,
            state_sha256 TEXT NOT NULL,
            saved_at TEXT NOT NULL,
            PRIMARY KEY (model, version, fingerprint)
        )"""


class FittedStates:
    """Mixed into both stores; its methods run on a `Database` (the connections)."""

    def registration_digest(self: Database, model: str, version: str) -> str:
        """The stored registration's content digest (artifact, reference, schema): what a
        fit's fingerprint starts from, read without the registration's megabytes."""
        row = (
            self._reader()
            .execute(
                "SELECT content_sha256 FROM model_versions WHERE model = ? AND version = ?",
                (model, version),
            )
            .fetchone()
        )
        if row is None:
            raise UnknownVersionError(f"{model}:{version} is not registered")
        return str(row[0])

    def fitted_state(self: Database, model: str, version: str, fingerprint: str) -> bytes | None:
        """The saved state under exactly this fingerprint; None if absent or corrupted."""
        row = (
            self._reader()
            .execute(
                "SELECT state, state_sha256 FROM fitted_states"
                " WHERE model = ? AND version = ? AND fingerprint = ?",
                (model, version, fingerprint),
            )
            .fetchone()
        )
        if row is None:
            return None
        state = bytes(row[0])
        return state if hashlib.sha256(state).hexdigest() == row[1] else None

    def save_fitted_state(
        self: Database, model: str, version: str, fingerprint: str, state: bytes
    ) -> None:
        """Insert or replace; then drop the version's older fingerprints beyond the few kept."""
        digest = hashlib.sha256(state).hexdigest()

        def work(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO fitted_states (model, version, fingerprint, state, state_sha256,"
                " saved_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model, version, fingerprint)"
                " DO UPDATE SET state = excluded.state, state_sha256 = excluded.state_sha256,"
                " saved_at = excluded.saved_at",
                (model, version, fingerprint, state, digest, now_iso()),
            )
            conn.execute(
                "DELETE FROM fitted_states WHERE model = ? AND version = ? AND fingerprint <> ?"
                " AND fingerprint NOT IN"
                " (SELECT fingerprint FROM fitted_states WHERE model = ? AND version = ?"
                " ORDER BY saved_at DESC, fingerprint LIMIT ?)",
                (model, version, fingerprint, model, version, KEEP_PER_VERSION),
            )

        self._write(work)

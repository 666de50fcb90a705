"""Analysis shared over the replicas: per-model leases in the database, and the queue's probe.

Why leases in a table and not PostgreSQL advisory locks: a session advisory lock lives on one
connection, and the store's connections are pooled and recycled (a lock would follow whichever
request borrowed it), while a replica that hangs without dropping its connection would hold
its models forever. A row `model -> holder, expires_us` is claimed and renewed with one upsert
(`... DO UPDATE ... WHERE expires_us < now OR holder = me`): it works the same on SQLite (one
replica: it holds every model) and on PostgreSQL, it is bounded in time (a replica that dies
hands its share over within `MONITOR_ANALYSIS_LEASE_SECONDS`), and it can be read.

Each replica also heartbeats a row in `analysis_replicas`; its share is ceil(models / live
replicas), so a second replica takes half of the models from the first (which releases its
surplus at its next claim). Time is the database's clock (one clock for every replica).
The tables are made by the schema migrations (SQLite's 5, PostgreSQL's 3, from `LEASE_TABLES`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from monitor.store.backend import Connection, Database

LEASE_TABLES = (
    """CREATE TABLE analysis_leases (
        model TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_us BIGINT NOT NULL
    )""",
    """CREATE TABLE analysis_replicas (
        holder TEXT PRIMARY KEY,
        expires_us BIGINT NOT NULL
    )""",
)
_NOW_US = {
    "sqlite": "SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
    "postgres": "SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS BIGINT)",
}
_CLAIM = (
    "INSERT INTO analysis_leases (model, holder, expires_us) VALUES (?, ?, ?)"
    " ON CONFLICT (model) DO UPDATE SET holder = excluded.holder, expires_us = excluded.expires_us"
    " WHERE analysis_leases.expires_us < ? OR analysis_leases.holder = excluded.holder"
)


class WorkSharing:
    """Mixed into both backends (`SqliteStore`, `PostgresStore`)."""

    def claim_models(
        self: Database,
        holder: str,
        models: Sequence[str],
        ttl_seconds: float,
        now_us: int | None = None,
    ) -> list[str]:
        """Renew `holder`'s leases, release its surplus over its share and claim free or
        expired models up to its share; the models it holds now, sorted. One transaction.
        `models` in order of preference: the first are kept when some must go (a replica
        lists the models it is analysing first, so no unit in progress is handed over)."""
        wanted = list(dict.fromkeys(models))

        def work(conn: Connection) -> list[str]:
            now = int(conn.execute(_NOW_US[self.dialect.name]).fetchone()[0])
            now = now if now_us is None else now_us
            until = now + int(ttl_seconds * 1e6)
            conn.execute(
                "INSERT INTO analysis_replicas (holder, expires_us) VALUES (?, ?)"
                " ON CONFLICT (holder) DO UPDATE SET expires_us = excluded.expires_us",
                (holder, until),
            )
            (live,) = conn.execute(
                "SELECT count(*) FROM analysis_replicas WHERE expires_us >= ?", (now,)
            ).fetchone()
            share = math.ceil(len(wanted) / max(1, int(live)))
            held = {
                m
                for (m,) in conn.execute(
                    "SELECT model FROM analysis_leases WHERE holder = ? AND expires_us >= ?",
                    (holder, now),
                )
            }
            keep = [m for m in wanted if m in held][:share]
            drop = sorted(held - set(keep))
            conn.executemany(
                "UPDATE analysis_leases SET expires_us = 0 WHERE model = ? AND holder = ?",
                [(m, holder) for m in drop],
            )
            conn.executemany(
                "UPDATE analysis_leases SET expires_us = ? WHERE model = ? AND holder = ?",
                [(until, m, holder) for m in keep],
            )
            for model in wanted:
                if len(keep) >= share:
                    break
                if model in held:
                    continue
                if conn.execute(_CLAIM, (model, holder, until, now)).rowcount:
                    keep.append(model)
            return sorted(keep)

        return self._write(work)

    def release_models(self: Database, holder: str) -> None:
        """Give up every lease of `holder` and its heartbeat (a replica stopping: another
        takes its share at its next claim, not after the lease time)."""

        def work(conn: Connection) -> None:
            conn.execute("DELETE FROM analysis_leases WHERE holder = ?", (holder,))
            conn.execute("DELETE FROM analysis_replicas WHERE holder = ?", (holder,))

        self._write(work)

    def lease_holders(self: Database) -> dict[str, str]:
        """model -> holder of every unexpired lease (for `monitor status` and the tests)."""
        try:
            now = int(self._reader().execute(_NOW_US[self.dialect.name]).fetchone()[0])
            rows = self._reader().execute(
                "SELECT model, holder FROM analysis_leases WHERE expires_us >= ?", (now,)
            )
            return {str(m): str(h) for m, h in rows}
        except Exception as exc:  # no table yet: nobody ever claimed
            if "analysis_leases" in str(exc):
                return {}
            raise

    def first_record_us(self: Database, model: str, version: str, after_seq: int) -> int | None:
        """The receive time of the version's first record after `after_seq` (the oldest
        evidence not yet in a chunk; the queue orders by it), None when there is none."""
        row = (
            self._reader()
            .execute(
                "SELECT ts_us FROM records WHERE model = ? AND version = ? AND seq > ?"
                " ORDER BY seq LIMIT 1",
                (model, version, after_seq),
            )
            .fetchone()
        )
        return None if row is None else int(row[0])

"""The SQL text that differs between the two backends, in one place.

The shared parts of the store (records.py, versions.py, memory.py, evidence.py,
retention.py) write their statements once, with `?` placeholders and the upserts both
engines accept (`ON CONFLICT ... DO UPDATE SET x = excluded.x`, `RETURNING`); a backend
passes them through its `Dialect`. What cannot be one text (SQLite's `INSERT OR IGNORE` of
many rows vs PostgreSQL's `unnest` of binary arrays) stays in each backend's ingest.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str
    placeholder: str  # what `?` becomes in a statement
    top_seq_sql: str  # the highest record sequence ever assigned, also once deleted
    lock_row: str  # appended to a SELECT that a read-modify-write updates afterwards

    def sql(self, statement: str) -> str:
        """`statement` in this dialect (the shared SQL has no literal `?` or `%`)."""
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    # AUTOINCREMENT keeps the highest sequence ever assigned in sqlite_sequence.
    top_seq_sql="SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0)",
    lock_row="",  # the one writer holds the database's write lock (BEGIN IMMEDIATE)
)

POSTGRES = Dialect(
    name="postgres",
    placeholder="%s",
    top_seq_sql="SELECT coalesce(max(seq), 0) FROM records",
    lock_row=" FOR UPDATE",
)

PG_WRITE_LOCK = 7_212_002  # pg_advisory_xact_lock key: one write transaction at a time

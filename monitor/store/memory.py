"""The operator's durable state and the audit log, a part of both stores.

State is a small JSON document per key, written by the operator and read back after a
restart, so that a restarted monitor never acts twice; which keys and what they hold is
`monitor/memory/state.py`, the only code that formats them. The audit log is append-only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from monitor.core.times import now_iso
from monitor.memory.audit import AuditEntry
from monitor.memory.state import OperatorState
from monitor.store.backend import Connection, Database


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


class StateAndAudit:
    """Mixed into both stores; its methods run on a `Database` (the connections)."""

    # -- operator state and audit log -----------------------------------------------------------

    def get_state(self: Database, key: str) -> dict[str, Any] | None:
        row = self._reader().execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_state(self: Database, key: str, value: Mapping[str, Any]) -> None:
        payload = canonical_json(dict(value))
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, payload, now_iso()),
            )
        )

    def update_state(
        self: Database, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Read-modify-write one key atomically (None from `change` deletes the key): the
        row is locked where the dialect has row locks, inside the one write transaction."""
        lock = self.dialect.lock_row

        def work(conn: Connection) -> dict[str, Any] | None:
            row = conn.execute(f"SELECT value FROM state WHERE key = ?{lock}", (key,)).fetchone()
            new = change(None if row is None else json.loads(row[0]))
            if new is None:
                conn.execute("DELETE FROM state WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                    " updated_at = excluded.updated_at",
                    (key, canonical_json(new), now_iso()),
                )
            return new

        return self._write(work)

    def state_keys(self: Database, prefix: str = "") -> list[str]:
        rows = self._reader().execute(
            "SELECT key FROM state WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix),
        )
        return [r[0] for r in rows]

    def append_audit(self: Database, entry: AuditEntry) -> int:
        """Append one audit record (`model` and `kind` are indexed); returns its id."""
        data = entry.to_json()
        data.setdefault("at", now_iso())
        payload = json.dumps(data, separators=(",", ":"), default=str)

        def work(conn: Connection) -> int:
            # RETURNING (SQLite >= 3.35) read to its end: no statement is left in progress
            # when the transaction commits.
            rows = conn.execute(
                "INSERT INTO audit (at, model, kind, entry) VALUES (?, ?, ?, ?) RETURNING id",
                (data["at"], data.get("model"), data.get("kind"), payload),
            ).fetchall()
            return int(rows[0][0]) if rows else 0

        return self._write(work)

    def audit(
        self: Database, model: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Audit records, oldest first (the newest `limit` if given)."""
        clauses, params = [], []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT id, entry FROM audit {where} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._reader().execute(sql, params).fetchall()
        return [{"id": i, **json.loads(e)} for i, e in reversed(rows)]

    # -- rejections (kept by the operator in `monitor.memory.state`) ----------------------

    def rejected_versions(self: Database, model: str) -> list[str]:
        return list(OperatorState(self).rejections(model))

"""The operator's durable state and the audit log, as a mixin of `Store`.

State is a small JSON document per key (`known_good/<model>`, `rejected/<model>`,
`incident/<model>`, `pending/<model>` ...), written by the operator and read back after a
restart, so that a restarted monitor never acts twice. The audit log is append-only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


class StateAndAudit:
    """Needs `_reader()` and `_write(work)` from the class it is mixed into."""

    def _reader(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        raise NotImplementedError

    # -- operator state and audit log -----------------------------------------------------------

    def get_state(self, key: str) -> dict[str, Any] | None:
        row = self._reader().execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_state(self, key: str, value: Mapping[str, Any]) -> None:
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
        self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Read-modify-write one key atomically (None from `change` deletes the key)."""

        def work(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
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

        result: dict[str, Any] | None = self._write(work)
        return result

    def state_keys(self, prefix: str = "") -> list[str]:
        rows = self._reader().execute(
            "SELECT key FROM state WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix),
        )
        return [r[0] for r in rows]

    def append_audit(self, entry: Mapping[str, Any]) -> int:
        """Append one audit record (`model` and `kind` are indexed); returns its id."""
        data = dict(entry)
        data.setdefault("at", now_iso())
        payload = json.dumps(data, separators=(",", ":"), default=str)

        def work(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO audit (at, model, kind, entry) VALUES (?, ?, ?, ?)",
                (data["at"], data.get("model"), data.get("kind"), payload),
            )
            return int(cur.lastrowid or 0)

        result: int = self._write(work)
        return result

    def audit(
        self, model: str | None = None, kind: str | None = None, limit: int | None = None
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

    # -- rejections (state key `rejected/<model>`, written by the operator) ------------------

    def rejected_versions(self, model: str) -> list[str]:
        return _rejected_in(self.get_state(f"rejected/{model}"))

    def clear_rejection(self, model: str, version: str, actor: str = "api") -> bool:
        """Remove `version` from the model's rejections and audit it; False if not rejected."""
        cleared = False

        def change(old: dict[str, Any] | None) -> dict[str, Any] | None:
            nonlocal cleared
            if old is None:
                return None
            versions = old.get("versions", [])
            if isinstance(versions, dict):
                cleared = versions.pop(version, None) is not None
            else:
                kept = [v for v in versions if _version_of(v) != version]
                cleared = len(kept) != len(versions)
                versions = kept
            return {**old, "versions": versions}

        self.update_state(f"rejected/{model}", change)
        if cleared:
            self.append_audit(
                {"kind": "rejection-cleared", "model": model, "version": version, "by": actor}
            )
        return cleared


def _version_of(item: Any) -> str:
    return str(item.get("version")) if isinstance(item, Mapping) else str(item)


def _rejected_in(value: Mapping[str, Any] | None) -> list[str]:
    """`{"versions": [...]}` of strings or `{version: ...}` dicts, or a dict keyed by version."""
    if not value:
        return []
    versions: Iterable[Any] = value.get("versions", [])
    if isinstance(versions, Mapping):
        return [str(v) for v in versions]
    return [_version_of(v) for v in versions]

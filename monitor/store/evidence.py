"""Chunk evidence, a part of both stores: what each analysed chunk found, stored as JSON
per (model, version, chunk_index) and overwritten when a chunk is re-analysed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from monitor.core.evidence import ChunkEvidence
from monitor.core.times import now_iso
from monitor.store.backend import Database


class ChunkStore:
    """Mixed into both stores; its methods run on a `Database` (the connections)."""

    def save_chunk(self: Database, evidence: ChunkEvidence) -> None:
        """Insert or replace the evidence of one chunk (re-analysis overwrites)."""
        self.save_chunks([evidence])

    def save_chunks(self: Database, evidences: Sequence[ChunkEvidence]) -> None:
        """Upsert many chunks in one transaction (one fsync for a whole analysis cycle)."""
        saved = now_iso()
        rows = [
            (
                e.model,
                e.version,
                e.chunk_index,
                json.dumps(e.to_dict(), separators=(",", ":")),
                saved,
            )
            for e in evidences
        ]
        if not rows:
            return
        self._write(
            lambda conn: conn.executemany(
                "INSERT INTO chunks (model, version, chunk_index, evidence, saved_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (model, version, chunk_index)"
                " DO UPDATE SET evidence = excluded.evidence, saved_at = excluded.saved_at",
                rows,
            )
        )

    def drop_chunks(self: Database, model: str, version: str, indexes: Sequence[int]) -> None:
        """Delete these chunks of a version: the analysis renumbering its periods (evidence
        numbered from the epoch by earlier releases, a moved anchor) before re-analysis."""
        rows = [(model, version, int(i)) for i in indexes]
        if not rows:
            return
        self._write(
            lambda conn: conn.executemany(
                "DELETE FROM chunks WHERE model = ? AND version = ? AND chunk_index = ?", rows
            )
        )

    def chunk_dicts(self: Database, model: str, version: str | None = None) -> list[dict[str, Any]]:
        """Chunk evidence as stored (plain dicts), in arrival order."""
        sql = "SELECT evidence FROM chunks WHERE model = ?"
        params: tuple[str, ...] = (model,)
        if version is not None:
            sql += " AND version = ?"
            params = (model, version)
        found = [json.loads(r[0]) for r in self._reader().execute(sql, params)]
        found.sort(key=lambda d: (d.get("first_seq", 0), d.get("chunk_index", 0)))
        return found

    def analysis_mark(self: Database, model: str) -> tuple[Any, ...]:
        """Changes whenever what a report of `model` shows may have changed: its chunk
        evidence, its versions, the audit log, the state (known-good, rejections). Not new
        records: a report shows analysed chunks, so under ingest it is still reused."""
        conn = self._reader()
        chunks = conn.execute(
            "SELECT count(*), max(saved_at) FROM chunks WHERE model = ?", (model,)
        ).fetchone()
        versions = conn.execute(
            "SELECT count(*), max(registered_at) FROM model_versions WHERE model = ?", (model,)
        ).fetchone()
        (audit,) = conn.execute("SELECT max(id) FROM audit").fetchone()
        (state,) = conn.execute("SELECT max(updated_at) FROM state").fetchone()
        return (*chunks, *versions, audit, state)

    def chunks(self: Database, model: str, version: str | None = None) -> list[ChunkEvidence]:
        return [ChunkEvidence.from_dict(d) for d in self.chunk_dicts(model, version)]

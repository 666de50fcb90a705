"""The store's plain types and value conversions (no database access).

Imported by `monitor.store`, which re-exports the names of the contract (`Conflict`,
`NotFound`, `VersionInfo`).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic_core import to_json

from monitor.core.evidence import ChunkEvidence
from monitor.memory.audit import AuditEntry


class Conflict(Exception):  # noqa: N818 (the name is in the contract)
    """The same model version was registered before with different content."""


class NotFound(KeyError):  # noqa: N818
    """No such model version (or artifact) in the store."""


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: str
    registered_at: str | None  # None: records arrived, the registration has not (yet)
    learner: str | None
    release: str | None
    state: str  # registered | unregistered | known-good | rejected
    records: int


@dataclass
class IngestResult:
    """What one `append_records` call changed, for the response and the metrics."""

    accepted: int = 0
    duplicates: int = 0
    accepted_by_version: dict[tuple[str, str], int] = field(default_factory=dict)
    labels_joined_by_model: dict[str, int] = field(default_factory=dict)


@dataclass
class LabelResult:
    accepted: int = 0
    joined_by_model: dict[str, int] = field(default_factory=dict)


def to_epoch_us(value: str | datetime) -> int:
    """ISO-8601 text or datetime -> integer microseconds since the epoch (naive = UTC)."""
    stamp = datetime.fromisoformat(value) if isinstance(value, str) else value
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    delta = stamp - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def features_json(features: Mapping[str, Any]) -> str:
    """Compact JSON of one record's features (pydantic-core's encoder: ~5x json.dumps)."""
    for value in features.values():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("features must be finite numbers, strings or null")
    return to_json(features).decode()


def registration_dict(reg: Any) -> dict[str, Any]:
    if hasattr(reg, "model_dump"):
        return dict(reg.model_dump(by_alias=True, mode="json"))
    return dict(reg)


class Database(Protocol):
    """What the parts of `Store` (state and audit, versions, chunk evidence, retention) need
    from the whole: the connections, and the methods they call on each other."""

    top_seq_sql: str  # the highest record sequence ever assigned, in the store's dialect

    def _reader(self) -> sqlite3.Connection: ...
    def _write(self, work: Callable[[sqlite3.Connection], Any]) -> Any: ...
    def get_state(self, key: str) -> dict[str, Any] | None: ...
    def put_state(self, key: str, value: Mapping[str, Any]) -> None: ...
    def update_state(
        self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None: ...
    def append_audit(self, entry: AuditEntry | Mapping[str, Any]) -> int: ...
    def save_chunks(self, evidences: Sequence[ChunkEvidence]) -> None: ...
    def chunk_dicts(self, model: str, version: str | None = None) -> list[dict[str, Any]]: ...

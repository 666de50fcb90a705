"""What analysis reads from and writes to the monitor's store, as protocols.

Why a module of its own: analysis and the store are sibling layers (neither imports the other:
pyproject.toml's import contracts), so analysis names the part of the store it uses here, as the
operator does in monitor/operator/ports.py; `monitor.store.protocol.Store` (both backends) satisfies
`AnalysisStore`, which mypy checks where the loops and the API hand a store to analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pandas as pd

from monitor.core.evidence import ChunkEvidence
from monitor.memory.state import StateStore


class VersionView(Protocol):
    """One model version as the store lists it (`monitor.store.types.VersionInfo`)."""

    @property
    def model(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def registered_at(self) -> str | None: ...  # None: records arrived, no registration yet
    @property
    def learner(self) -> str | None: ...
    @property
    def release(self) -> str | None: ...
    @property
    def state(self) -> str: ...  # registered | unregistered | known-good | rejected
    @property
    def records(self) -> int: ...


class FittedStateStore(Protocol):
    """Where fitted calculators persist (monitor/store/fits.py): opaque bytes under a
    fingerprint of what the fit depends on, so a restart or another replica loads them.
    Only the monitor writes them (the trust this takes: monitor/store/fits.py)."""

    def registration_digest(self, model: str, version: str) -> str: ...
    def fitted_state(self, model: str, version: str, fingerprint: str) -> bytes | None: ...
    def save_fitted_state(
        self, model: str, version: str, fingerprint: str, state: bytes
    ) -> None: ...


class AnalysisStore(StateStore, FittedStateStore, Protocol):
    def models(self) -> list[str]: ...
    def versions(self, model: str | None = None) -> Sequence[VersionView]: ...
    def registration(
        self, model: str, version: str, *, with_reference: bool = True
    ) -> dict[str, Any]: ...
    def artifact(self, model: str, version: str) -> bytes: ...
    def count_records(self, model: str, version: str, after_seq: int = 0) -> int: ...
    def records_frame(
        self,
        model: str,
        version: str,
        after_seq: int = 0,
        limit: int | None = None,
        event_from_us: int | None = None,
    ) -> pd.DataFrame: ...
    def oldest_unlabelled_us(self, model: str) -> int | None: ...
    def label_clock(self) -> int: ...
    def label_changes(self, model: str, version: str, since: int) -> list[tuple[int, int]]: ...
    def chunk_labels_seen(self, model: str, version: str) -> dict[int, int]: ...
    def mark_labels_seen(self, model: str, version: str, clock: int) -> None: ...
    def chunks(self, model: str, version: str | None = None) -> list[ChunkEvidence]: ...
    def save_chunks(self, evidences: Sequence[ChunkEvidence]) -> None: ...
    def drop_chunks(self, model: str, version: str, indexes: Sequence[int]) -> None: ...
    def audit(
        self, model: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]: ...


class QueueStore(AnalysisStore, Protocol):
    """What the analysis queue (queue.py) reads besides: the oldest record not yet in a chunk."""

    def first_record_us(self, model: str, version: str, after_seq: int) -> int | None: ...

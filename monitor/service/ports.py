"""The part of the monitor's store the service reads and writes: the operator's (state, audit,
chunks, registrations; the candidate verdict is computed over it) plus the version catalogue."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from monitor.operator.ports import OperatorStore
from monitor.store.types import VersionInfo


class ServiceStore(OperatorStore, Protocol):
    def register(
        self, reg: Any, *, holdout: dict[str, Any] | None = None
    ) -> Literal["created", "unchanged"]: ...
    def registered_pairs(self) -> set[tuple[str, str]]: ...
    def models(self) -> list[str]: ...
    def versions(self, model: str | None = None) -> list[VersionInfo]: ...

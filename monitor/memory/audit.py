"""The audit log's one entry type: what happened to which model, who did it, and why.

Why a type: entries were built as dicts in a dozen places (operator, routes, store), each
spelling `time`, `by` and the ModelMonitor's coordinates its own way. Every writer now builds
an `AuditEntry`; the stored JSON keeps the keys earlier releases wrote (readers filter on
`kind`, `model`, `version`, `trigger`), so an existing database reads back as it was written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from monitor.core.times import now_iso

AuditKind = Literal[
    "registered",
    "known-good",
    "known-good-declared",
    "rejection-cleared",
    "rollback",
    "dry-run-rollback",
    "rollback-superseded",
    "rollback-missing",
    "rollback-applied",
    "rejected",
    "candidate-added",
    "candidate-removed",
    "candidate-verdict",
    "policy-usable",
    "policy-unusable",
]


@dataclass(frozen=True)
class AuditEntry:
    """One audit record. `namespace`/`modelmonitor` are set when a ModelMonitor acted;
    `by` names the actor of an API or CLI action (`api`, `spec`, a user); `details` holds
    the kind's own fields (a decision's evidence, a verdict, a patch), stored flat. `time`
    None stores no `time` key (the store's `at` is then the only stamp, as API and CLI
    actions have always been written)."""

    kind: AuditKind | str
    model: str
    version: str | None = None
    by: str | None = None
    namespace: str | None = None
    modelmonitor: str | None = None
    time: str | None = field(default_factory=now_iso)
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The stored form: the fixed fields that are set, then the details, flat."""
        data: dict[str, Any] = {"time": self.time, "kind": self.kind, "model": self.model}
        if self.time is None:
            del data["time"]
        for key in ("version", "by", "namespace", "modelmonitor"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        data.update(self.details)
        return data


class AuditLog(Protocol):
    """Where entries go (the store) and how they are read back, oldest first."""

    def append_audit(self, entry: AuditEntry) -> int: ...
    def audit(
        self, model: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]: ...

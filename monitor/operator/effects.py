"""What a reconcile pass does to the world, as plain data: decided first, applied by `apply.py`.

Why a module of its own: the reconciler decides and `publish.py` words the reports, both
without writing; everything they want done is one of these values, so what a pass changes can
be read (and tested) before anything changes, and `apply.apply` is the one place that writes.
A durable write is named by what it means (`NoteRollback`, not "put this JSON"), and applied
through `monitor.memory`, which formats every key and document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.decision.candidates import CandidateVerdict
from monitor.memory.audit import AuditEntry
from monitor.memory.state import KnownGood, PendingRollback, PolicyReport, Rejection, RollbackRecord
from monitor.operator.ports import EventNote

# -- durable state (monitor.memory) ----------------------------------------------------------


@dataclass(frozen=True)
class SetKnownGood:
    model: str
    known_good: KnownGood


@dataclass(frozen=True)
class Reject:
    """The first rejection of `version` is kept (a later one keeps the first reason)."""

    model: str
    version: str
    rejection: Rejection


@dataclass(frozen=True)
class NoteRollback:
    """The incident memory learns of a rollback (or a dry-run one): never again for it."""

    namespace: str
    name: str
    record: RollbackRecord


@dataclass(frozen=True)
class NoteNotified:
    """The incident memory learns that `kind` was said about `key` (`kind:release`)."""

    namespace: str
    name: str
    kind: str
    key: str


@dataclass(frozen=True)
class SetPolicyReport:
    model: str
    report: PolicyReport


@dataclass(frozen=True)
class SyncSpecCandidates:
    """`spec.candidates` becomes the spec's share of the model's declared candidates."""

    model: str
    versions: tuple[str, ...]
    backfill_chunks: int
    at: str


@dataclass(frozen=True)
class SetVerdicts:
    model: str
    verdicts: Mapping[str, Mapping[str, Any]]


Write = (
    SetKnownGood
    | Reject
    | NoteRollback
    | NoteNotified
    | SetPolicyReport
    | SyncSpecCandidates
    | SetVerdicts
)

# -- metrics (monitor.operator.ports.OperatorMetrics) ---------------------------------------


@dataclass(frozen=True)
class InitRollbacks:
    namespace: str
    name: str
    triggers: tuple[str, ...]
    mode: str


@dataclass(frozen=True)
class CountRollback:
    namespace: str
    name: str
    trigger: str
    mode: str


@dataclass(frozen=True)
class SetCondition:
    namespace: str
    name: str
    type: str
    status: bool


@dataclass(frozen=True)
class CountReconcileError:
    namespace: str
    name: str


@dataclass(frozen=True)
class ExportCandidates:
    model: str
    verdicts: tuple[CandidateVerdict, ...]


Metric = InitRollbacks | CountRollback | SetCondition | CountReconcileError | ExportCandidates

# -- the Deployment patch ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rollback:
    """Patch the Deployment back, bracketed by the durable intent `pending`: written before
    the patch (unless `resumed`: it is already stored, from before a restart), cleared once
    the outcome is reported. `model`, `mode` and `target_name` are the current spec's, which
    the report names; `time` is when it is reported."""

    pending: PendingRollback
    model: str
    mode: str
    target_name: str
    time: datetime
    resumed: bool = False


@dataclass(frozen=True)
class Effects:
    """One round of a pass; `apply` runs it in this field order."""

    writes: tuple[Write, ...] = ()
    audit: tuple[AuditEntry, ...] = ()
    events: tuple[EventNote, ...] = ()
    rollback: Rollback | None = None
    status: Mapping[str, Any] | None = None
    metrics: tuple[Metric, ...] = ()

    def __add__(self, other: Effects) -> Effects:
        if self.rollback is not None and other.rollback is not None:
            raise ValueError("one Deployment patch per round")
        return Effects(
            (*self.writes, *other.writes),
            (*self.audit, *other.audit),
            (*self.events, *other.events),
            self.rollback or other.rollback,
            other.status if other.status is not None else self.status,
            (*self.metrics, *other.metrics),
        )


NOTHING = Effects()


def combined(parts: Sequence[Effects]) -> Effects:
    total = NOTHING
    for part in parts:
        total = total + part
    return total


@dataclass
class Applied:
    """What `apply` saw happen: the Deployment patch's outcome and ops, if one was made."""

    outcome: str | None = None
    patch: list[dict[str, Any]] = field(default_factory=list)

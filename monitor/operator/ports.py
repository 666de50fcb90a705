"""What the reconcile loop needs from the world, as protocols and plain data.

Why a module of its own: the operator is written against these ports, not against the
Kubernetes client or SQLite. `monitor/kube/` implements `Target` twice (a real API server,
and the offline synthesis from registered versions); `monitor/store/` satisfies
`OperatorStore`. Both sides import from here, the operator imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from monitor.core.evidence import ChunkEvidence
from monitor.decision.candidates import CandidateVerdict
from monitor.memory.audit import AuditEntry
from monitor.memory.state import RollbackPlan, StateStore
from monitor.operator.resource import ModelMonitor

Outcome = Literal["patched", "already", "superseded", "missing", "failed"]


@dataclass(frozen=True)
class RevisionView:
    """One ReplicaSet owned by the Deployment: its revision, pod template and model version."""

    number: int
    name: str
    version: str | None
    template: Mapping[str, Any]


@dataclass(frozen=True)
class Observation:
    """The target Deployment as read: what it serves now and every revision it can go back to."""

    deployment: Mapping[str, Any]
    revisions: Mapping[int, RevisionView]
    live_version: str | None
    live_revision: int | None

    @property
    def history(self) -> dict[int, str | None]:
        return {n: r.version for n, r in self.revisions.items()}


@dataclass(frozen=True)
class EventNote:
    """A Kubernetes Event about a ModelMonitor; `key` names it, so a retry posts it once."""

    reason: str
    message: str
    time: datetime
    key: str
    warning: bool = False


class Target(Protocol):
    """The cluster as the operator sees it (a real API server or the offline synthesis)."""

    def list_monitors(self) -> list[dict[str, Any]]: ...  # the bodies, as the API sends them
    def observe(self, namespace: str, deployment: str) -> Observation | None: ...
    def rollback(self, plan: RollbackPlan) -> tuple[Outcome, list[dict[str, Any]]]: ...
    def plan_patch(self, plan: RollbackPlan) -> list[dict[str, Any]]: ...
    def event(self, monitor: ModelMonitor, note: EventNote) -> None: ...
    def publish_status(self, monitor: ModelMonitor, status: dict[str, Any]) -> None: ...


class OperatorStore(StateStore, Protocol):
    """The part of the monitor's store the operator reads and writes."""

    def chunks(self, model: str, version: str | None = None) -> list[ChunkEvidence]: ...
    def registration(
        self, model: str, version: str, *, with_reference: bool = True
    ) -> dict[str, Any]: ...
    def artifact(self, model: str, version: str) -> bytes: ...
    def append_audit(self, entry: AuditEntry) -> int: ...
    def audit(
        self, model: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]: ...


class OperatorMetrics(Protocol):
    """What the operator reports to Prometheus (monitor/metrics/registry.py implements it)."""

    def init_rollbacks(
        self, namespace: str, modelmonitor: str, triggers: tuple[str, ...], mode: str, /
    ) -> None: ...
    def record_rollback(
        self, namespace: str, modelmonitor: str, trigger: str, mode: str, /
    ) -> None: ...
    def set_condition(
        self, namespace: str, modelmonitor: str, type_: str, status: bool, /
    ) -> None: ...
    def reconcile_error(self, namespace: str, modelmonitor: str, /) -> None: ...
    def publish_candidates(self, model: str, verdicts: Sequence[CandidateVerdict], /) -> None: ...

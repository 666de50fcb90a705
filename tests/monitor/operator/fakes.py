"""A recording `Target` for unit tests, where no Kubernetes API runs (the kmock integration
tests drive the real `KubeTarget`); Events are kept as the bodies `kube.events` would post."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.kube.events import event_body
from monitor.memory.state import RollbackPlan
from monitor.operator.ports import EventNote, Observation, Outcome
from monitor.operator.resource import ModelMonitor

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PATCH: list[dict[str, Any]] = [{"op": "replace", "path": "/spec/template", "value": {}}]


@dataclass
class RecordingTarget:
    """Answers every rollback with `outcome` (or calls `on_rollback` first: to look at the
    store at patch time, or to die there)."""

    outcome: Outcome = "patched"
    on_rollback: Callable[[RollbackPlan], None] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: list[RollbackPlan] = field(default_factory=list)

    def list_monitors(self) -> list[dict[str, Any]]:
        return []

    def observe(self, namespace: str, deployment: str) -> Observation | None:
        return None

    def rollback(self, plan: RollbackPlan) -> tuple[Outcome, list[dict[str, Any]]]:
        if self.on_rollback is not None:
            self.on_rollback(plan)
        self.rollbacks.append(plan)
        return self.outcome, PATCH if self.outcome in ("patched", "already") else []

    def plan_patch(self, plan: RollbackPlan) -> list[dict[str, Any]]:
        return PATCH

    def event(self, monitor: ModelMonitor, note: EventNote) -> None:
        self.events.append(event_body(monitor, note))

    def publish_status(self, monitor: ModelMonitor, status: dict[str, Any]) -> None:
        self.statuses.append(status)

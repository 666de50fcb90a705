"""Clearing a rejection by hand (`POST .../clear-rejection`, `monitor clear-rejection`): the
operator rejected a version it rolled back, and never lets it run again until someone who
knows better says so here. The rejections themselves are the operator's memory
(monitor/memory/state.py)."""

from __future__ import annotations

from monitor.memory.audit import AuditEntry
from monitor.memory.state import OperatorState
from monitor.service.errors import NotFoundError
from monitor.service.ports import ServiceStore


def clear_rejection(store: ServiceStore, model: str, version: str, actor: str) -> bool:
    """Let `version` run again (audited `rejection-cleared`, `by` `actor`); False when it
    was not rejected. `NotFoundError` when the monitor knows no such version at all."""
    state = OperatorState(store)
    known = {v.version for v in store.versions(model)}
    if version not in known and version not in state.rejections(model):
        raise NotFoundError(f"{model}:{version} is unknown")
    cleared = state.clear_rejection(model, version)
    if cleared:
        store.append_audit(AuditEntry("rejection-cleared", model, version, by=actor, time=None))
    return cleared

"""Declaring a version known-good by hand (`POST .../known-good`, `monitor known-good set`):
the baseline a release is judged against and rolled back to, from a model's first release
on, before any version has passed probation. A ModelMonitor's `spec.knownGood` is the
operator's to apply (monitor/operator/reconciler.py), not this module's.
"""

from __future__ import annotations

from monitor.core.times import now_iso
from monitor.memory.audit import AuditEntry
from monitor.memory.state import KnownGood, OperatorState
from monitor.service.errors import ConflictError, NotFoundError
from monitor.service.ports import ServiceStore


def declare_known_good(store: ServiceStore, model: str, version: str, actor: str) -> str | None:
    """Make the registered `version` the model's known-good version (audited
    `known-good-declared`, `by` `actor`); returns the previous one (None: none).

    `NotFoundError` when it is not registered, `ConflictError` when it is rejected (a
    rejected version is cleared first, so that the operator never rolls back to it)."""
    if version not in {v.version for v in store.versions(model) if v.registered_at}:
        raise NotFoundError(f"{model}:{version} is not registered", "version")
    state = OperatorState(store)
    if version in state.rejections(model):
        raise ConflictError(f"{model}:{version} is rejected; clear the rejection first", "version")
    previous = state.known_good(model)
    state.set_known_good(model, KnownGood(version, None, now_iso(), declared_by=actor))
    before = previous.version if previous else None
    store.append_audit(
        AuditEntry(
            "known-good-declared",
            model,
            version,
            by=actor,
            time=None,
            details={"previous": before},
        )
    )
    return before

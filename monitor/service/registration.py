"""Registering a model version: the one path a registration takes into the store, whether it
arrives as `POST /v1/models` or with a candidate declaration (`candidates.register_and_declare`).

A new version's artifact is first loaded and scored on its reference rows in an isolated
child (monitor/analysis/artifact.py), so that a booster that crashes, hangs or cannot score
is refused before anything is stored. A version already stored is never vetted again: the
same content sent again (a predictor re-registers on every start, also after the monitor
restarted) is answered from the store, changed content is a conflict, and nothing vets at
start-up.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from contract.registration import Registration
from monitor.analysis.artifact import ArtifactRefusedError, vet
from monitor.memory.audit import AuditEntry
from monitor.service.errors import ConflictError, InvalidError, UnusableError
from monitor.service.ports import ServiceStore
from monitor.store.types import RegistrationConflictError

log = logging.getLogger("modelguard.monitor")

RegistrationStatus = Literal["created", "unchanged"]


@dataclass(frozen=True)
class ArtifactLimits:
    """What the vetting child may use (MONITOR_ARTIFACT_MEMORY_BYTES, _TIMEOUT_SECONDS)."""

    memory_bytes: int
    timeout_seconds: float


def register(
    store: ServiceStore, reg: Registration, raw: bytes, limits: ArtifactLimits
) -> RegistrationStatus:
    """Store `reg` (its artifact `raw` vetted first when the version is new) and audit a new
    one (`registered`): "created", or "unchanged" for the same content again.

    Raises `UnusableError`/`InvalidError` naming `artifact` or `reference` when vetting
    fails, `ConflictError` on changed content under a stored version. Blocking (the child
    runs for up to `limits.timeout_seconds`): call it from a thread in async code."""
    if (reg.model, reg.version) in store.registered_pairs():
        holdout = None  # the same content again (unchanged) or a conflict: no child
    else:
        holdout = _vetted_holdout(reg, raw, limits)
    try:
        status = store.register(reg, holdout=holdout)
    except RegistrationConflictError as exc:
        raise ConflictError(str(exc)) from None
    if status == "created":
        store.append_audit(AuditEntry("registered", reg.model, reg.version, time=None))
        log.info("registered %s:%s", reg.model, reg.version)
    return status


def _vetted_holdout(
    reg: Registration, raw: bytes, limits: ArtifactLimits
) -> dict[str, float | None]:
    """The monitor's own metrics of the artifact on the reference rows; raises when refused."""
    start = time.monotonic()
    try:
        vetted = vet(
            raw,
            reg.schema.model_dump(mode="json"),
            reg.reference,
            memory_bytes=limits.memory_bytes,
            timeout_seconds=limits.timeout_seconds,
        )
    except ArtifactRefusedError as exc:
        log.warning("registration of %s:%s refused: %s", reg.model, reg.version, exc)
        # the child answers 422 for rows it cannot score, anything else is an unusable artifact
        refusal = InvalidError if exc.status == 422 else UnusableError
        raise refusal(str(exc), exc.loc) from None
    log.info(
        "%s:%s vetted in %.2f s (child of the warm vetting process %d)",
        reg.model,
        reg.version,
        time.monotonic() - start,
        vetted.warm_pid,
    )
    return vetted.holdout

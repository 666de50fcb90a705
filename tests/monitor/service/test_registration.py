"""Registering through the service: a real model vetted in its child and audited once, the
same content again unchanged, refusals (an artifact that does not load, changed content)
storing nothing. Also `register_and_declare`, which declares only what it registered."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from contract.registration import Registration
from monitor.memory.candidates import CandidateState
from monitor.service import candidates
from monitor.service.errors import ConflictError, UnusableError
from monitor.service.registration import ArtifactLimits, register
from monitor.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow  # trains the session's models (tests/conftest.py)
LIMITS = ArtifactLimits(memory_bytes=2 * 1024**3, timeout_seconds=60)
NO_CHILD_PASSES = ArtifactLimits(memory_bytes=1, timeout_seconds=0)


def variant(reg: Registration, **change: Any) -> Registration:
    return Registration.model_validate({**reg.model_dump(by_alias=True, mode="json"), **change})


def test_a_new_version_is_vetted_stored_and_audited_once(
    store: SqliteStore, registrations: dict[str, Any]
) -> None:
    reg = registrations["good"]
    assert register(store, reg, reg.artifact_bytes(), LIMITS) == "created"
    stored = store.registration(reg.model, reg.version)
    assert set(stored["monitor_holdout"]) >= {"roc_auc"}  # the monitor's own hold-out score
    assert register(store, reg, reg.artifact_bytes(), LIMITS) == "unchanged"
    [entry] = store.audit(reg.model, "registered")
    assert set(entry) == {"id", "at", "kind", "model", "version"}
    assert entry["version"] == reg.version


def test_changed_content_under_a_stored_version_is_a_conflict(
    store: SqliteStore, registrations: dict[str, Any]
) -> None:
    reg = registrations["good"]
    register(store, reg, reg.artifact_bytes(), LIMITS)
    changed = variant(reg, description="something else")
    with pytest.raises(ConflictError):
        register(store, changed, changed.artifact_bytes(), LIMITS)
    assert store.registration(reg.model, reg.version)["description"] == reg.description
    assert len(store.audit(reg.model, "registered")) == 1


def test_an_artifact_that_does_not_load_is_refused_and_nothing_stored(
    store: SqliteStore, registrations: dict[str, Any]
) -> None:
    bad = variant(
        registrations["good"],
        version="broken-1",
        artifact=base64.b64encode(b"not a booster").decode(),
    )
    with pytest.raises(UnusableError) as refused:
        candidates.register_and_declare(store, bad, bad.artifact_bytes(), LIMITS)
    assert refused.value.loc == "artifact"
    assert store.registered_pairs() == set()
    assert CandidateState(store).entries(bad.model) == {}
    assert store.audit(bad.model) == []


def test_register_and_declare_reports_both(
    store: SqliteStore, registrations: dict[str, Any]
) -> None:
    reg = registrations["retrain"]
    first = candidates.register_and_declare(store, reg, reg.artifact_bytes(), LIMITS)
    assert (first.added, first.registration) == (True, "created")
    again = candidates.register_and_declare(store, reg, reg.artifact_bytes(), LIMITS)
    assert (again.added, again.registration) == (False, "unchanged")
    assert [e["kind"] for e in store.audit(reg.model)] == ["registered", "candidate-added"]


def test_a_stored_version_is_not_vetted_again_after_a_restart(
    tmp_path: Path, registrations: dict[str, Any]
) -> None:
    """Nothing vets at start-up, and the same content sent again after a restart (a predictor
    re-registers on every start) is answered from the store: with limits no child could
    pass (1 byte of memory, a timeout of 0 s) it is still `unchanged`, not refused."""
    reg = registrations["good"]
    with SqliteStore(tmp_path / "m.db") as first:
        assert register(first, reg, reg.artifact_bytes(), LIMITS) == "created"
    with SqliteStore(tmp_path / "m.db") as restarted:
        assert register(restarted, reg, reg.artifact_bytes(), NO_CHILD_PASSES) == "unchanged"
        assert restarted.registration(reg.model, reg.version)["monitor_holdout"]["roc_auc"]
        assert len(restarted.audit(reg.model, "registered")) == 1
    fresh = variant(reg, version="never-vetted")
    with SqliteStore(tmp_path / "m.db") as restarted, pytest.raises(UnusableError):
        register(restarted, fresh, fresh.artifact_bytes(), NO_CHILD_PASSES)  # these limits bite

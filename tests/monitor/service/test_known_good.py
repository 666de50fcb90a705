"""Declaring a known-good version by hand: stored for the operator, audited with the
previous one, refused (changing nothing) for an unregistered or a rejected version."""

from __future__ import annotations

import pytest

from monitor.memory.state import OperatorState, Rejection
from monitor.service.errors import ConflictError, NotFoundError
from monitor.service.known_good import declare_known_good
from monitor.store.sqlite import SqliteStore
from tests.monitor.service.conftest import MODEL, audit_of, register


def test_declaring_stores_it_and_audits_the_previous_one(store: SqliteStore) -> None:
    register(store, "v1")
    register(store, "v2")
    assert declare_known_good(store, MODEL, "v1", "cli:alice") is None
    assert declare_known_good(store, MODEL, "v2", "api") == "v1"
    kg = OperatorState(store).known_good(MODEL)
    assert kg is not None and (kg.version, kg.declared_by, kg.revision) == ("v2", "api", None)
    first, second = audit_of(store, "known-good-declared")
    assert set(second) == {"id", "at", "kind", "model", "version", "by", "previous"}
    assert (first["by"], first["previous"]) == ("cli:alice", None)
    assert (second["version"], second["previous"]) == ("v2", "v1")


def test_an_unregistered_version_is_refused(store: SqliteStore) -> None:
    with pytest.raises(NotFoundError) as refused:
        declare_known_good(store, MODEL, "v9", "api")
    assert refused.value.loc == "version"
    assert OperatorState(store).known_good(MODEL) is None
    assert audit_of(store, "known-good-declared") == []


def test_a_rejected_version_is_refused_until_cleared(store: SqliteStore) -> None:
    register(store, "v1")
    OperatorState(store).reject(MODEL, "v1", Rejection("estimated gap"))
    with pytest.raises(ConflictError) as refused:
        declare_known_good(store, MODEL, "v1", "api")
    assert "clear the rejection first" in refused.value.message
    assert OperatorState(store).known_good(MODEL) is None
    assert audit_of(store, "known-good-declared") == []

"""Clearing a rejection by hand: forgotten by the operator's memory, audited once, refused
for a version the monitor never heard of."""

from __future__ import annotations

import pytest

from monitor.memory.state import OperatorState, Rejection
from monitor.service.errors import NotFoundError
from monitor.service.rejections import clear_rejection
from monitor.store.sqlite import SqliteStore
from tests.monitor.service.conftest import MODEL, audit_of, register


def test_clearing_forgets_the_rejection_and_audits_it_once(store: SqliteStore) -> None:
    register(store, "v1")
    OperatorState(store).reject(MODEL, "v1", Rejection("estimated gap"))
    assert clear_rejection(store, MODEL, "v1", "alice") is True
    assert OperatorState(store).rejections(MODEL) == {}
    assert clear_rejection(store, MODEL, "v1", "alice") is False  # nothing left to clear
    [entry] = audit_of(store, "rejection-cleared")
    assert set(entry) == {"id", "at", "kind", "model", "version", "by"}
    assert (entry["version"], entry["by"]) == ("v1", "alice")


def test_a_rejected_version_no_longer_registered_can_be_cleared(store: SqliteStore) -> None:
    OperatorState(store).reject(MODEL, "gone", Rejection("estimated gap"))
    assert clear_rejection(store, MODEL, "gone", "api") is True


def test_an_unknown_version_is_refused(store: SqliteStore) -> None:
    register(store, "v1")
    with pytest.raises(NotFoundError):
        clear_rejection(store, MODEL, "v9", "api")
    assert audit_of(store, "rejection-cleared") == []

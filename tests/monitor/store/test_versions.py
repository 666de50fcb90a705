"""Registrations and the versions overview on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from contract.registration import Registration
from monitor.store import Store
from monitor.store.types import RegistrationConflictError, UnknownVersionError
from tests.monitor.store.samples import record, registration


def test_registration_is_idempotent_and_conflicts_are_refused(store: Store) -> None:
    assert store.register(registration()) == "created"
    assert store.register(registration()) == "unchanged"
    with pytest.raises(RegistrationConflictError):
        store.register(registration(description="changed"))
    assert store.artifact("m", "v1") == b"booster-bytes"
    reg = store.registration("m", "v1")
    assert "artifact" not in reg and reg["reference"][0]["temp"] == 1.0
    assert "reference" not in store.registration("m", "v1", with_reference=False)
    with pytest.raises(UnknownVersionError):
        store.artifact("m", "nope")
    with pytest.raises(UnknownVersionError):
        store.registration("m", "nope")


def test_versions_list_registered_and_record_only_versions(store: Store) -> None:
    store.register(registration("v1"))
    store.append_records([record(i, "v1") for i in range(3)] + [record(7, "v9")])
    infos = {v.version: v for v in store.versions("m")}
    assert infos["v1"].state == "registered" and infos["v1"].records == 3
    assert infos["v9"].state == "unregistered" and infos["v9"].registered_at is None
    store.put_state("known_good/m", {"version": "v1", "revision": 3})
    store.put_state("rejected/m", {"versions": [{"version": "v9", "reason": "gap"}]})
    infos = {v.version: v for v in store.versions()}
    assert infos["v1"].state == "known-good" and infos["v9"].state == "rejected"
    assert store.models() == ["m"]


def v1_registration(**changes: Any) -> dict[str, Any]:
    """A registration as an earlier release stored it: a schema of version 1 (min/max)."""
    body = registration()
    body["schema"] = {
        "schema_version": 1,
        "features": [{"name": "temp", "min": -50.0, "max": 60.0}, {"name": "gust"}],
        "label": {"name": "rain"},
    }
    body["reference"] = [
        {"temp": float(i), "gust": 2.0, "rain": i % 2, "probability": 0.5} for i in range(100)
    ]
    body.update(changes)
    return body


def test_the_same_registration_read_by_a_newer_contract_is_unchanged(store: Store) -> None:
    """After an upgrade the predictor sends its registration again, now read into the
    version-2 schema: not a different version (409), the same one."""
    assert store.register(v1_registration()) == "created"  # stored as an earlier release did
    again = Registration.model_validate(v1_registration())
    assert again.schema_.schema_version != 1  # today's contract reads it into a newer shape
    assert store.register(again) == "unchanged"
    with pytest.raises(RegistrationConflictError):
        store.register(Registration.model_validate(v1_registration(description="changed")))


def test_models_lists_registered_and_record_only_models_each_once(store: Store) -> None:
    """The records' models are found by a loose index scan (one seek per model): every model,
    once, sorted, whether it has a registration, records, or both."""
    assert store.models() == []
    store.register({**registration("v1"), "model": "b"})
    store.append_records(
        [{**record(i), "model": "c"} for i in range(3)]
        + [{**record(10 + i), "model": "a", "version": "v7"} for i in range(2)]
        + [{**record(20), "model": "b"}]
    )
    assert store.models() == ["a", "b", "c"]


def test_a_version_registered_later_is_listed_with_its_registration(store: Store) -> None:
    """Registration heads are kept per open store; a version registered since is still seen."""
    store.register(registration("v1"))
    assert [v.version for v in store.versions("m")] == ["v1"]
    store.register(registration("v2", description="second"))
    infos = {v.version: v for v in store.versions("m")}
    assert infos["v2"].registered_at is not None and infos["v2"].state == "registered"
    assert store.registration("m", "v2", with_reference=False)["description"] == "second"

"""`monitor/api/routes/operator.py` (clear-rejection, known-good) and `/v1/decisions` through
FastAPI's TestClient: the service's answers and refusals as status codes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from monitor.memory.audit import AuditEntry
from monitor.memory.state import OperatorState, Rejection
from monitor.store.sqlite import SqliteStore
from tests.monitor.api.conftest import auth
from tests.monitor.service.conftest import MODEL, register

VERSIONS = f"/v1/models/{MODEL}/versions"


def test_known_good_404_unregistered_409_rejected_then_declared(
    client: TestClient, store: SqliteStore
) -> None:
    register(store, "v1")
    register(store, "v2")
    OperatorState(store).reject(MODEL, "v1", Rejection("estimated gap"))
    op = auth("operator")
    assert client.post(f"{VERSIONS}/v9/known-good", headers=op).status_code == 404
    rejected = client.post(f"{VERSIONS}/v1/known-good", headers=op)
    assert rejected.status_code == 409
    assert rejected.json()["error"] == "version: m:v1 is rejected; clear the rejection first"
    done = client.post(f"{VERSIONS}/v2/known-good", headers=op)
    assert done.status_code == 200
    assert done.json() == {"model": MODEL, "version": "v2", "previous": None}
    [entry] = store.audit(MODEL, "known-good-declared")
    assert entry["by"] == "api"


def test_clear_rejection_404_unknown_then_cleared_then_not(
    client: TestClient, store: SqliteStore
) -> None:
    register(store, "v1")
    OperatorState(store).reject(MODEL, "v1", Rejection("estimated gap"))
    op = auth("operator")
    unknown = client.post(f"{VERSIONS}/v9/clear-rejection", headers=op)
    assert unknown.status_code == 404 and unknown.json()["errors"] == []
    first = client.post(f"{VERSIONS}/v1/clear-rejection", headers=op)
    assert first.status_code == 200 and first.json()["cleared"] is True
    again = client.post(f"{VERSIONS}/v1/clear-rejection", headers=op)
    assert again.status_code == 200 and again.json()["cleared"] is False
    assert [e["by"] for e in store.audit(MODEL, "rejection-cleared")] == ["api"]


def test_decisions_are_the_audit_records_that_name_a_trigger(
    client: TestClient, store: SqliteStore
) -> None:
    store.append_audit(AuditEntry("rollback", MODEL, details={"trigger": "parity"}))
    store.append_audit(AuditEntry("known-good", MODEL, details={"trigger": None}))
    store.append_audit(AuditEntry("registered", MODEL, version="v1"))
    store.append_audit(AuditEntry("decision", MODEL))  # a kind no writer uses
    resp = client.get("/v1/decisions", params={"model": MODEL}, headers=auth("reader"))
    assert resp.status_code == 200
    assert [e["kind"] for e in resp.json()] == ["rollback", "known-good"]

"""`monitor/api/routes/candidates.py` through FastAPI's TestClient: each route answers the
service's result with its status code (201 new, 200 already), maps each refusal to its
status and `loc`, and admits only its role. Stored effects are the service's
(tests/monitor/service/); here they are checked only where a refusal must change nothing."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contract.errors import ErrorBody
from monitor.memory.candidates import CandidateState
from monitor.store.sqlite import SqliteStore
from tests.monitor.api.conftest import auth
from tests.monitor.service.conftest import MODEL, register
from tests.support.candidates import worse_chunks

BASE = f"/v1/models/{MODEL}/candidates"


def refusal(resp: Any, status: int) -> ErrorBody:
    assert resp.status_code == status, resp.text
    return ErrorBody.model_validate_json(resp.content, strict=True)


def test_put_declares_a_registered_version_201_then_200(
    client: TestClient, store: SqliteStore
) -> None:
    register(store, "v2")
    first = client.put(f"{BASE}/v2", headers=auth("operator"))
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["declared"] is True and body["sources"] == ["api"]
    assert body["registration"] is None and body["model"] == MODEL
    again = client.put(f"{BASE}/v2", headers=auth("operator"))
    assert again.status_code == 200 and again.json()["declared"] is False
    assert again.json()["added_at"] == body["added_at"]


def test_put_of_an_unregistered_version_is_a_404_naming_it(
    client: TestClient, store: SqliteStore
) -> None:
    error = refusal(client.put(f"{BASE}/v9", headers=auth("operator")), 404)
    assert error.errors[0].loc == "version"
    assert CandidateState(store).entries(MODEL) == {}


def test_delete_withdraws_404_when_not_a_candidate_409_when_spec_declares(
    client: TestClient, store: SqliteStore
) -> None:
    register(store, "v2")
    register(store, "v3")
    client.put(f"{BASE}/v2", headers=auth("operator"))
    gone = client.delete(f"{BASE}/v2", headers=auth("operator"))
    assert gone.status_code == 200
    assert gone.json() == {"model": MODEL, "version": "v2", "removed": True}
    refusal(client.delete(f"{BASE}/v2", headers=auth("operator")), 404)
    CandidateState(store).sync_spec(MODEL, ["v3"], backfill=0, at="2024-01-01T00:00:00Z")
    error = refusal(client.delete(f"{BASE}/v3", headers=auth("operator")), 409)
    assert "spec.candidates" in error.error and error.errors[0].loc == "version"
    assert "v3" in CandidateState(store).entries(MODEL)


def test_get_lists_each_candidate_with_the_verdict_the_service_gives(
    client: TestClient, store: SqliteStore
) -> None:
    register(store, "v1")
    register(store, "v2")
    client.put(f"{BASE}/v2", headers=auth("operator"))
    CandidateState(store).save_chunks(MODEL, "v2", worse_chunks())
    resp = client.get(BASE, headers=auth("reader"))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["model"] == MODEL
    [found] = doc["candidates"]
    assert found["version"] == "v2" and found["sources"] == ["api"]
    assert found["verdict"]["verdict"] == "Worse" and found["verdict"]["chunks"] == 4


def test_get_of_an_unknown_model_is_a_404_naming_the_model(client: TestClient) -> None:
    error = refusal(client.get("/v1/models/nope/candidates", headers=auth("reader")), 404)
    assert error.errors[0].loc == "model"


@pytest.mark.slow
def test_post_registers_and_declares_and_maps_an_unusable_artifact_to_400(
    client: TestClient, store: SqliteStore, registrations: dict[str, Any]
) -> None:
    reg = registrations["good"]
    body = reg.model_dump(by_alias=True, mode="json")
    base = f"/v1/models/{reg.model}/candidates"
    bad = {**body, "version": "broken-1", "artifact": base64.b64encode(b"nope").decode()}
    error = refusal(client.post(base, json=bad, headers=auth("operator")), 400)
    assert error.errors[0].loc == "artifact"
    assert store.registered_pairs() == set()
    elsewhere = client.post("/v1/models/other/candidates", json=body, headers=auth("operator"))
    mismatch = refusal(elsewhere, 422)
    assert mismatch.errors[0].loc == "model"
    created = client.post(base, json=body, headers=auth("operator"))
    assert created.status_code == 201, created.text
    assert created.json()["registration"] == "created" and created.json()["declared"] is True
    again = client.post(base, json=body, headers=auth("operator"))
    assert again.status_code == 200
    assert again.json()["registration"] == "unchanged" and again.json()["declared"] is False


@pytest.mark.parametrize(
    ("method", "path", "role", "status"),
    [
        ("put", f"{BASE}/v2", None, 401),
        ("put", f"{BASE}/v2", "reader", 403),
        ("delete", f"{BASE}/v2", "predictor", 403),
        ("get", BASE, None, 401),
    ],
)
def test_each_route_admits_only_its_role(
    client: TestClient, store: SqliteStore, method: str, path: str, role: str | None, status: int
) -> None:
    register(store, "v2")
    headers = auth(role) if role else {}
    refusal(client.request(method, path, headers=headers), status)
    assert CandidateState(store).entries(MODEL) == {}

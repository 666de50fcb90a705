"""The candidate routes over real loopback HTTP against `python -m monitor serve` (one token
per role, a reader token): declare (register + declare, or declare a registered version),
list with verdicts, withdraw; refusals write nothing. The registrations are real models
trained into a temporary store (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from contract.errors import ErrorBody
from monitor.memory.candidates import CandidateChunk, CandidateState
from monitor.store.sqlite import SqliteStore
from tests.support.monitor import MonitorProcess, RoleAuth, register_as, running_monitor

pytestmark = pytest.mark.slow
MODEL = "rain_forecast"
BASE = f"/v1/models/{MODEL}/candidates"


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitorProcess]:
    with running_monitor(tmp_path_factory.mktemp("candidates"), reader_token=True) as proc:
        yield proc


@pytest.fixture
def client(monitor: MonitorProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=monitor.url, timeout=120, auth=RoleAuth(monitor)) as c:
        yield c


@pytest.fixture(scope="module")
def good(monitor: MonitorProcess, registrations: dict[str, Any]) -> Any:
    reg = registrations["good"]
    register_as(monitor, reg, reg.version)
    return reg


def error(resp: httpx.Response) -> ErrorBody:
    return ErrorBody.model_validate_json(resp.content, strict=True)


def body_of(reg: Any, version: str | None = None) -> dict[str, Any]:
    body = reg.model_dump(by_alias=True, mode="json")
    return {**body, "version": version} if version else body


def stored(monitor: MonitorProcess) -> tuple[set[str], dict[str, Any], list[dict[str, Any]]]:
    """(registered versions, declared candidates, candidate audit records) of the store."""
    with SqliteStore(monitor.db_path) as store:
        versions = {v.version for v in store.versions(MODEL) if v.registered_at}
        entries = CandidateState(store).entries(MODEL)
        audit = [e for e in store.audit(MODEL) if str(e.get("kind")).startswith("candidate-")]
    return versions, entries, audit


def listed(client: httpx.Client) -> dict[str, dict[str, Any]]:
    resp = client.get(BASE)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["model"] == MODEL
    return {c["version"]: c for c in doc["candidates"]}


def test_register_declare_list_and_withdraw(
    client: httpx.Client, monitor: MonitorProcess, good: Any, registrations: dict[str, Any]
) -> None:
    reg = registrations["retrain"]
    resp = client.post(BASE, json=body_of(reg))
    assert resp.status_code == 201, resp.text
    answer = resp.json()
    assert answer["declared"] is True and answer["registration"] == "created"
    assert answer["sources"] == ["api"]
    again = client.post(BASE, json=body_of(reg))  # the same content: already a candidate
    assert again.status_code == 200, again.text
    assert again.json()["declared"] is False and again.json()["registration"] == "unchanged"
    # Registered like any registration: the monitor's own hold-out figures are stored.
    detail = client.get(f"/v1/models/{MODEL}/versions/{reg.version}").json()
    assert detail["monitor_holdout"]["roc_auc"] is not None

    found = listed(client)[reg.version]
    assert found["sources"] == ["api"] and found["added_at"]
    verdict = found["verdict"]
    assert verdict["version"] == reg.version
    assert (verdict["verdict"], verdict["reason"]) == ("Inconclusive", "NoEvidence")
    for key in ("estimated_gap", "estimated_gap_lower", "realized_gap", "chunks_needed", "level"):
        assert key in verdict
    _, entries, audit = stored(monitor)
    assert reg.version in entries
    assert [(e["kind"], e["version"]) for e in audit] == [("candidate-added", reg.version)]

    resp = client.delete(f"{BASE}/{reg.version}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"model": MODEL, "version": reg.version, "removed": True}
    assert reg.version not in listed(client)
    resp = client.delete(f"{BASE}/{reg.version}")
    assert resp.status_code == 404 and [e.loc for e in error(resp).errors] == ["version"]
    versions, entries, audit = stored(monitor)
    assert reg.version in versions and reg.version not in entries  # still registered
    assert [e["kind"] for e in audit][-1] == "candidate-removed"


def test_declaring_a_registered_version(
    client: httpx.Client, monitor: MonitorProcess, good: Any, registrations: dict[str, Any]
) -> None:
    register_as(monitor, registrations["no-key-features"], "nkf-put")
    resp = client.put(f"{BASE}/nkf-put")
    assert resp.status_code == 201, resp.text
    assert resp.json()["declared"] is True and resp.json()["registration"] is None
    assert client.put(f"{BASE}/nkf-put").status_code == 200
    assert listed(client)["nkf-put"]["sources"] == ["api"]
    # A version the monitor does not have: 404 naming it, nothing declared.
    before = stored(monitor)
    resp = client.put(f"{BASE}/never-registered")
    assert resp.status_code == 404, resp.text
    assert [e.loc for e in error(resp).errors] == ["version"]
    assert "not registered" in error(resp).error
    assert stored(monitor) == before
    assert client.delete(f"{BASE}/nkf-put").status_code == 200


def test_bad_bodies_are_refused_and_store_nothing(
    client: httpx.Client, monitor: MonitorProcess, good: Any, registrations: dict[str, Any]
) -> None:
    before = stored(monitor)
    # The path's model and the body's differ.
    resp = client.post(
        "/v1/models/another_model/candidates", json=body_of(registrations["retrain"], "mismatch")
    )
    assert resp.status_code == 422, resp.text
    assert [e.loc for e in error(resp).errors] == ["model"]
    # A stored name with other content: 409, not declared.
    resp = client.post(BASE, json=body_of(registrations["no-key-features"], good.version))
    assert resp.status_code == 409, resp.text
    # A field missing; a body that is not JSON.
    broken = body_of(registrations["retrain"], "broken")
    del broken["schema"]
    resp = client.post(BASE, json=broken)
    assert resp.status_code == 422 and [e.loc for e in error(resp).errors] == ["schema"]
    resp = client.post(BASE, content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    # An artifact that does not load: vetted as any registration (400 naming `artifact`).
    cut = body_of(registrations["retrain"], "truncated")
    cut["artifact"] = cut["artifact"][: len(cut["artifact"]) // 3 // 4 * 4]
    resp = client.post(BASE, json=cut)
    assert resp.status_code == 400 and [e.loc for e in error(resp).errors] == ["artifact"]
    assert stored(monitor) == before


def test_roles(
    client: httpx.Client, monitor: MonitorProcess, good: Any, registrations: dict[str, Any]
) -> None:
    before = stored(monitor)
    body = body_of(registrations["retrain"], "role-test")
    writes = [
        ("POST", BASE, body),
        ("PUT", f"{BASE}/{good.version}", None),
        ("DELETE", f"{BASE}/{good.version}", None),
    ]
    for method, path, json in writes:
        resp = client.request(method, path, json=json, headers={"Authorization": ""})
        assert resp.status_code == 401, (method, resp.text)
        resp = client.request(method, path, json=json, headers={"Authorization": "Bearer x"})
        assert resp.status_code == 401, (method, resp.text)
        for role in ("predictor", "labels", "reader"):
            resp = client.request(method, path, json=json, headers=monitor.headers(role))
            assert resp.status_code == 403, (method, role, resp.text)
            assert "operator token" in error(resp).error
    assert stored(monitor) == before
    # Reads: the reader (or the operator), not the others.
    assert client.get(BASE).status_code == 200
    assert client.get(BASE, headers=monitor.headers("operator")).status_code == 200
    assert client.get(BASE, headers={"Authorization": ""}).status_code == 401
    for role in ("predictor", "labels"):
        assert client.get(BASE, headers=monitor.headers(role)).status_code == 403
    resp = client.get("/v1/models/no_such_model/candidates")
    assert resp.status_code == 404 and [e.loc for e in error(resp).errors] == ["model"]


def test_a_spec_declared_candidate_is_withdrawn_in_its_modelmonitor(
    client: httpx.Client, monitor: MonitorProcess, good: Any, registrations: dict[str, Any]
) -> None:
    register_as(monitor, registrations["retrain"], "spec-declared")
    now = datetime.now(UTC).isoformat()
    with SqliteStore(monitor.db_path) as store:  # as the operator's reconcile of spec.candidates
        assert CandidateState(store).sync_spec(MODEL, ["spec-declared"], 4, now)
    assert listed(client)["spec-declared"]["sources"] == ["spec"]
    assert client.put(f"{BASE}/spec-declared").status_code == 201  # the API declares it too
    assert listed(client)["spec-declared"]["sources"] == ["spec", "api"]
    before = stored(monitor)
    resp = client.delete(f"{BASE}/spec-declared")
    assert resp.status_code == 409, resp.text
    assert "spec.candidates" in error(resp).error and "remove it there" in error(resp).error
    assert stored(monitor) == before  # nothing changed
    with SqliteStore(monitor.db_path) as store:  # the ModelMonitor drops it
        CandidateState(store).sync_spec(MODEL, [], 4, now)
    assert client.delete(f"{BASE}/spec-declared").status_code == 200
    assert "spec-declared" not in listed(client)


def chunk(index: int, candidate: float, baseline: float, analysed_at: str) -> CandidateChunk:
    return CandidateChunk(
        chunk_index=index,
        baseline_version="base",
        rows=500,
        first_seq=500 * index + 1,
        last_seq=500 * (index + 1),
        candidate_estimate=candidate,
        candidate_sampling_error=0.01,
        baseline_estimate=baseline,
        baseline_sampling_error=0.01,
        rank_correlation=0.9,
        analysed_at=analysed_at,
    )


def test_the_verdict_is_the_operators_else_computed_now(
    client: httpx.Client, monitor: MonitorProcess, good: Any, registrations: dict[str, Any]
) -> None:
    register_as(monitor, registrations["no-key-features"], "judged")
    assert client.put(f"{BASE}/judged").status_code == 201
    now = datetime.now(UTC).isoformat()
    gaps = (-0.061, -0.058, -0.064, -0.060)
    with SqliteStore(monitor.db_path) as store:  # as the analysis cycle scores it
        CandidateState(store).save_chunks(
            MODEL, "judged", [chunk(i, 0.86 + g, 0.86, now) for i, g in enumerate(gaps)]
        )
    verdict = listed(client)["judged"]["verdict"]
    assert verdict["verdict"] == "Worse" and verdict["basis"] == "estimated", verdict
    assert verdict["chunks"] == 4 and verdict["rows"] == 2000
    assert (
        verdict["estimated_gap_lower"] < verdict["estimated_gap"] < verdict["estimated_gap_upper"]
    )
    # Once the operator stored a verdict (its spec's candidatePolicy), that one is shown.
    mine = {**verdict, "verdict": "Inconclusive", "reason": "BandOverlaps", "message": "kept"}
    with SqliteStore(monitor.db_path) as store:
        CandidateState(store).set_verdicts(MODEL, {"judged": mine})
    assert listed(client)["judged"]["verdict"] == mine
    assert client.delete(f"{BASE}/judged").status_code == 200

"""The monitor's HTTP API over real loopback HTTP against `python -m monitor serve`.

Bad payloads must get a 4xx that names the field and leave the store exactly as it was; every
error answer is a `contract.errors.ErrorBody`, and /openapi.json says so. Ingest (records,
duplicates, refusals, label joins), registration and the background analysis run on both
backends (a SQLite file; a real PostgreSQL server via MONITOR_DATABASE_URL); the rest of the
API does not touch the database differently and runs on SQLite only.
"""

from __future__ import annotations

import base64
import copy
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contract.errors import ErrorBody, openapi_schemas
from monitor.memory.audit import AuditEntry
from monitor.store import open_store
from monitor.store.sqlite import SqliteStore
from tests.support.monitor import MonitorProcess, RoleAuth, register_as, running_monitor
from tests.support.postgres import (  # noqa: F401 (fixtures)
    BACKENDS,
    Cluster,
    Where,
    backend_where_fixture,
    pg_cluster,
    pg_database_url,
)

MAX_RECORDS = 1000
MAX_BODY = 2 * 1024 * 1024
NO_TOKEN = {"Authorization": ""}  # overrides RoleAuth: a request without a token
# Versions the records below name; registered (operator token: any name) before any test.
API_VERSIONS = ("v-api", "v-good", "v-labels", "v-metrics")


LIMITS_ENV = {
    "MONITOR_MAX_RECORDS_PER_REQUEST": str(MAX_RECORDS),
    "MONITOR_MAX_BODY_BYTES": str(MAX_BODY),
}


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitorProcess]:
    with running_monitor(tmp_path_factory.mktemp("monitor-api"), env=LIMITS_ENV) as proc:
        yield proc


@pytest.fixture(scope="module")
def api_versions(monitor: MonitorProcess, registrations: dict[str, Any]) -> None:
    """Records are stored only for registered versions (test_trust_boundary.py)."""
    register_as(monitor, registrations["good"], *API_VERSIONS)


@pytest.fixture(scope="module", params=BACKENDS)
def any_monitor(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    registrations: dict[str, Any],
) -> Iterator[MonitorProcess]:
    """The module's monitor on each backend: the SQLite one above, or one whose data is on
    the session's PostgreSQL cluster (the test runs twice)."""
    if request.param == "sqlite":
        request.getfixturevalue("api_versions")
        yield request.getfixturevalue("monitor")
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    env = {**LIMITS_ENV, "MONITOR_DATABASE_URL": cluster.create_database()}
    with running_monitor(tmp_path_factory.mktemp("monitor-api-pg"), env=env) as proc:
        register_as(proc, registrations["good"], *API_VERSIONS)
        yield proc


@pytest.fixture
def client(monitor: MonitorProcess, api_versions: None) -> Iterator[httpx.Client]:
    """Each request with the token of the role its route needs (tests/support/monitor.py)."""
    with httpx.Client(base_url=monitor.url, timeout=30, auth=RoleAuth(monitor)) as c:
        yield c


@pytest.fixture
def any_client(any_monitor: MonitorProcess) -> Iterator[httpx.Client]:
    """`client`, on each backend's monitor."""
    with httpx.Client(base_url=any_monitor.url, timeout=30, auth=RoleAuth(any_monitor)) as c:
        yield c


def where_of(monitor: MonitorProcess) -> Where:
    """The monitor's database, as its environment names it."""
    return Where(monitor.db_path, monitor.env.get("MONITOR_DATABASE_URL"))


def rows_in(monitor: MonitorProcess) -> tuple[int, int, int]:
    """(records, labels, model versions) straight from the monitor's database."""
    url = where_of(monitor).database_url
    conn: Any = psycopg.connect(url) if url else sqlite3.connect(monitor.db_path)
    try:
        return tuple(
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("records", "labels", "model_versions")
        )
    finally:
        conn.close()


def error_body(resp: httpx.Response) -> ErrorBody:
    """The response's body, which must be exactly an ErrorBody (no other keys)."""
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    return ErrorBody.model_validate_json(resp.content, strict=True)


def locations(resp: httpx.Response) -> list[str]:
    return [e.loc for e in error_body(resp).errors]


def rec(version: str = "v-api", **over: Any) -> dict[str, Any]:
    base = {
        "prediction_id": uuid.uuid4().hex,
        "model": "rain_forecast",
        "version": version,
        "timestamp": "2013-07-01T12:00:00Z",
        "features": {"temp": 71.1, "wind_gust": None, "origin": "EWR", "visib": 10},
        "probability": 0.42,
        "predicted_class": 0,
    }
    base.update(over)
    return base


def test_good_records_are_stored_and_duplicates_ignored(
    any_client: httpx.Client, any_monitor: MonitorProcess
) -> None:
    client = any_client
    batch = [rec("v-good") for _ in range(300)]
    resp = client.post("/v1/records", json={"records": batch})
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 300, "duplicates": 0}
    again = client.post("/v1/records", json={"records": [*batch[:10], rec("v-good")]})
    assert again.json() == {"accepted": 1, "duplicates": 10}
    # Twice in one request: stored once, counted once as a duplicate.
    twice = rec("v-good")
    assert client.post("/v1/records", json={"records": [twice, twice]}).json() == {
        "accepted": 1,
        "duplicates": 1,
    }
    with open_store(where_of(any_monitor)) as store:
        frame = store.records_frame("rain_forecast", "v-good")
    assert len(frame) == 302
    assert list(frame["prediction_id"][:300]) == [r["prediction_id"] for r in batch]
    assert frame["temp"].iloc[0] == 71.1 and frame["origin"].iloc[0] == "EWR"
    assert frame["wind_gust"].isna().all() and frame["visib"].iloc[0] == 10
    versions = {v["version"]: v for v in client.get("/v1/models").json()}
    assert versions["v-good"]["records"] == 302
    assert versions["v-good"]["state"] == "registered"


NAN_BODY = (
    b'{"records": [{"prediction_id": "x1", "model": "m", "version": "v", "timestamp":'
    b' "2013-07-01T00:00:00Z", "features": {"temp": NaN}, "probability": 0.1,'
    b' "predicted_class": 0}]}'
)


@pytest.mark.parametrize(
    ("payload", "status", "names"),
    [
        ({"records": [rec(), rec(probability=1.5)]}, 422, "records[1].probability"),
        ({"records": [rec(predicted_class=2)]}, 422, "records[0].predicted_class"),
        ({"records": [rec(predicted_class=True)]}, 422, "records[0].predicted_class"),
        ({"records": [rec(timestamp=1372680000)]}, 422, "records[0].timestamp"),
        ({"records": [rec(timestamp="yesterday")]}, 422, "records[0].timestamp"),
        ({"records": [rec(features={"temp": True})]}, 422, "records[0].features.temp"),
        ({"records": [rec(features={"temp": [1, 2]})]}, 422, "records[0].features.temp"),
        ({"records": [rec(features={"temp": {"c": 1}})]}, 422, "records[0].features.temp"),
        ({"records": [rec(model="Bad Name!")]}, 422, "records[0].model"),
        ({"records": [rec(extra="field")]}, 422, "records[0].extra"),
        (
            {"records": [{k: v for k, v in rec().items() if k != "prediction_id"}]},
            422,
            "records[0].prediction_id",
        ),
        ({"records": []}, 422, "records"),
        ({"rows": [rec()]}, 422, "records"),
        ({"records": [rec() for _ in range(MAX_RECORDS + 1)]}, 413, "records"),
        (NAN_BODY, 422, "records[0].features.temp"),
        (b'{"records": [{"prediction_id": ', 400, "JSON"),
        (b"x" * (MAX_BODY + 10), 413, "larger than"),
    ],
)
def test_bad_records_are_refused_naming_the_problem_and_write_nothing(
    any_client: httpx.Client,
    any_monitor: MonitorProcess,
    payload: Any,
    status: int,
    names: str,
) -> None:
    client = any_client
    before = rows_in(any_monitor)
    if isinstance(payload, bytes):
        headers = {"content-type": "application/json"}
        resp = client.post("/v1/records", content=payload, headers=headers)
    else:
        resp = client.post("/v1/records", json=payload)
    assert resp.status_code == status, resp.text
    body = error_body(resp)
    assert names in body.error
    if status == 422:
        assert names in locations(resp), body
    assert rows_in(any_monitor) == before


def test_a_feature_failing_every_union_branch_is_one_error(client: httpx.Client) -> None:
    bad = {"temp": True, "dewp": [1], "visib": 10}
    resp = client.post("/v1/records", json={"records": [rec(features=bad)]})
    assert resp.status_code == 422, resp.text
    assert [(e.loc, e.msg) for e in error_body(resp).errors] == [
        ("records[0].features.temp", "must be a finite number, a string or null"),
        ("records[0].features.dewp", "must be a finite number, a string or null"),
    ]
    resp = client.post(
        "/v1/records", content=NAN_BODY, headers={"content-type": "application/json"}
    )
    assert [(e.loc, e.msg) for e in error_body(resp).errors] == [
        ("records[0].features.temp", "must be finite (NaN and infinity are not allowed; send null)")
    ]


def test_an_oversize_chunked_body_is_refused(client: httpx.Client, monitor: MonitorProcess) -> None:
    before = rows_in(monitor)

    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * (MAX_BODY // 2)

    resp = client.post(
        "/v1/records", content=chunks(), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413
    assert locations(resp) == ["body"]
    assert rows_in(monitor) == before


@pytest.mark.parametrize(
    ("labels", "names"),
    [
        ([{"prediction_id": "a", "label": 2}], "labels[0].label"),
        ([{"prediction_id": "a", "label": "1"}], "labels[0].label"),
        ([{"prediction_id": "a", "label": True}], "labels[0].label"),
        ([{"prediction_id": "a", "label": 1}, {"label": 0}], "labels[1].prediction_id"),
        ([{"prediction_id": "a", "label": 1, "timestamp": "soon"}], "labels[0].timestamp"),
    ],
)
def test_bad_labels_are_refused(
    client: httpx.Client, monitor: MonitorProcess, labels: list[dict[str, Any]], names: str
) -> None:
    before = rows_in(monitor)
    resp = client.post("/v1/labels", json={"labels": labels})
    assert resp.status_code == 422 and names in locations(resp), resp.text
    assert rows_in(monitor) == before


def test_labels_join_in_any_order(any_client: httpx.Client, any_monitor: MonitorProcess) -> None:
    client = any_client
    batch = [rec("v-labels") for _ in range(40)]
    ids = [r["prediction_id"] for r in batch]
    truth = {pid: i % 2 for i, pid in enumerate(ids)}
    early = ids[30:][::-1]  # labels before their records, newest first
    client.post(
        "/v1/labels", json={"labels": [{"prediction_id": p, "label": truth[p]} for p in early]}
    )
    for part in (batch[20:], batch[:20]):  # records out of order too
        assert client.post("/v1/records", json={"records": part}).status_code == 202
    late = ids[5:30:2] + ids[6:30:2]
    labels = [
        {"prediction_id": p, "label": truth[p], "timestamp": "2013-07-01T16:00:00Z"} for p in late
    ]
    assert client.post("/v1/labels", json={"labels": labels}).json() == {"accepted": len(late)}
    with open_store(where_of(any_monitor)) as store:
        frame = store.records_frame("rain_forecast", "v-labels").set_index("prediction_id")
    got = frame["label"]
    for pid in ids:
        if pid in early or pid in late:
            assert got[pid] == truth[pid]
        else:
            assert got.isna()[pid]


def test_registration_needs_the_token_and_is_idempotent(
    any_client: httpx.Client, any_monitor: MonitorProcess, registrations: dict[str, Any]
) -> None:
    client, monitor = any_client, any_monitor
    body = registrations["good"].model_dump(by_alias=True, mode="json")
    before = rows_in(monitor)
    unauthorized = client.post("/v1/models", json=body, headers=NO_TOKEN)
    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    assert error_body(unauthorized) == ErrorBody(
        error="missing or unknown bearer token (this endpoint needs the predictor or operator"
        " token)",
        errors=[],
    )
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.post("/v1/models", json=body, headers=wrong).status_code == 401
    assert rows_in(monitor) == before

    first = client.post("/v1/models", json=body, headers=monitor.auth)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "created"
    again = client.post("/v1/models", json=body, headers=monitor.auth)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    changed = {**body, "description": "something else"}
    conflict = client.post("/v1/models", json=changed, headers=monitor.auth)
    assert conflict.status_code == 409
    assert error_body(conflict) == ErrorBody(
        error=f"{body['model']}:{body['version']} is registered with different content", errors=[]
    )

    model, version = body["model"], body["version"]
    listed = {(v["model"], v["version"]): v for v in client.get("/v1/models").json()}
    assert listed[(model, version)]["registered_at"]
    assert listed[(model, version)]["learner"] == "xgboost"
    detail = client.get(f"/v1/models/{model}/versions/{version}").json()
    assert detail["schema"]["features"] and "artifact" not in detail and "reference" not in detail
    with open_store(where_of(monitor)) as store:
        assert store.artifact(model, version) == registrations["good"].artifact_bytes()
    missing = client.get(f"/v1/models/{model}/versions/nope")
    assert missing.status_code == 404
    assert error_body(missing).error == f"{model}:nope is not registered"


def test_a_registration_whose_artifact_is_not_a_booster_is_refused(
    client: httpx.Client, monitor: MonitorProcess, registrations: dict[str, Any]
) -> None:
    body = registrations["retrain"].model_dump(by_alias=True, mode="json")
    body["artifact"] = base64.b64encode(b"{not a booster at all").decode()
    before = rows_in(monitor)
    resp = client.post("/v1/models", json=body, headers=monitor.auth)
    assert resp.status_code == 400 and locations(resp) == ["artifact"], resp.text
    missing = {k: v for k, v in body.items() if k != "schema"}
    resp = client.post("/v1/models", json=missing, headers=monitor.auth)
    assert resp.status_code == 422 and locations(resp) == ["schema"], resp.text
    resp = client.post(
        "/v1/models",
        content=b'{"model": ',
        headers={**monitor.auth, "content-type": "application/json"},
    )
    assert resp.status_code == 400 and locations(resp) == ["body"], resp.text
    assert error_body(resp).error.startswith("body: Invalid JSON")
    assert rows_in(monitor) == before


@pytest.mark.parametrize("segment", ["", "no_such_feature", "temp"])
def test_a_schema_whose_segment_is_no_category_feature_is_a_422_on_both_routes(
    client: httpx.Client, monitor: MonitorProcess, registrations: dict[str, Any], segment: str
) -> None:
    """Was a KeyError inside the validator, answered 500 (issue 20, item 7)."""
    body = registrations["retrain"].model_dump(by_alias=True, mode="json")
    body["schema"]["segment"] = segment
    before = rows_in(monitor)
    for path in ("/v1/models", f"/v1/models/{body['model']}/candidates"):
        resp = client.post(path, json=body, headers=monitor.auth)
        assert resp.status_code == 422, (path, resp.text)
        (only,) = error_body(resp).errors
        assert only.loc == "schema.segment", resp.text
        assert repr(segment) in only.msg
    assert rows_in(monitor) == before


def test_a_version_1_schema_registers_with_its_min_max_as_limits(
    client: httpx.Client, monitor: MonitorProcess, registrations: dict[str, Any]
) -> None:
    """A predictor still sending a version-1 schema (bento packaged before version 2)."""
    body = registrations["good"].model_dump(by_alias=True, mode="json")
    v1 = copy.deepcopy(body["schema"]) | {"schema_version": 1}
    for feat in v1["features"]:
        feat.update(feat.pop("limits", None) or {})
        feat.pop("expected", None)
        feat.pop("unknown", None)
    resp = client.post("/v1/models", json={**body, "version": "v-schema-1", "schema": v1})
    assert resp.status_code == 201, resp.text
    detail = client.get(f"/v1/models/{body['model']}/versions/v-schema-1").json()
    assert detail["schema"]["schema_version"] == 2
    assert detail["schema"]["features"] == body["schema"]["features"]


def test_clear_rejection(client: httpx.Client, monitor: MonitorProcess) -> None:
    with SqliteStore(monitor.db_path) as store:
        store.put_state("rejected/m-rej", {"versions": {"v9": {"reason": "gap"}}})
    path = "/v1/models/m-rej/versions/v9/clear-rejection"
    assert client.post(path, headers=NO_TOKEN).status_code == 401
    resp = client.post(path, headers=monitor.auth)
    assert resp.status_code == 200 and resp.json()["cleared"] is True
    assert client.post(path, headers=monitor.auth).status_code == 404  # neither rejected nor known
    with SqliteStore(monitor.db_path) as store:
        assert store.rejected_versions("m-rej") == []
    audit = client.get("/v1/audit", params={"model": "m-rej"}).json()
    assert [(e["kind"], e["version"]) for e in audit] == [("rejection-cleared", "v9")]


def test_read_outs_and_health(client: httpx.Client, monitor: MonitorProcess) -> None:
    with SqliteStore(monitor.db_path) as store:
        store.append_audit(AuditEntry("rollback", "m-read", details={"trigger": "parity"}))
        store.append_audit(AuditEntry("registered", "m-read"))
    decisions = client.get("/v1/decisions", params={"model": "m-read"}).json()
    assert [d["trigger"] for d in decisions] == ["parity"]
    assert client.get("/v1/models/m-read/chunks").json() == []
    unknown = client.get("/reports/no-such-model")
    assert unknown.status_code == 404
    assert error_body(unknown) == ErrorBody(error="model 'no-such-model' is unknown", errors=[])
    assert error_body(client.get("/no/such/path")).error == "Not Found"
    assert client.delete("/v1/models").status_code == 405
    assert error_body(client.delete("/v1/models")).error == "Method Not Allowed"
    bad_limit = client.get("/v1/audit", params={"limit": 0})
    assert bad_limit.status_code == 422 and locations(bad_limit) == ["query.limit"]
    assert client.get("/livez").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_metrics_exposition_parses_back(client: httpx.Client) -> None:
    client.post("/v1/records", json={"records": [rec("v-metrics") for _ in range(7)]})
    client.post("/v1/records", json={"records": [rec("v-metrics", probability=2)]})
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }
    key = (("model", "rain_forecast"), ("version", "v-metrics"))
    assert values[("modelguard_records_ingested_total", key)] == 7
    assert values[("modelguard_records_rejected_total", (("reason", "invalid"),))] >= 1


def test_openapi_describes_every_endpoint(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/v1/records",
        "/v1/labels",
        "/v1/models",
        "/v1/models/{model}/versions/{version}",
        "/v1/models/{model}/chunks",
        "/v1/audit",
        "/v1/decisions",
        "/v1/models/{model}/versions/{version}/clear-rejection",
        "/reports/{model}",
        "/metrics",
        "/livez",
        "/readyz",
    ):
        assert path in paths, path
    record = doc["components"]["schemas"]["InferenceRecord"]["properties"]
    assert record["probability"]["maximum"] == 1.0
    assert record["predicted_class"]["enum"] == [0, 1]
    assert "Registration" in doc["components"]["schemas"]
    assert {"201", "200", "401", "409", "422"} <= set(paths["/v1/models"]["post"]["responses"])


def test_openapi_gives_every_error_answer_the_shared_error_body(client: httpx.Client) -> None:
    """The same `ErrorBody` and `FieldError` schemas as the predictor's /docs.json
    (test_predictor_http.py compares that one with `openapi_schemas()` too)."""
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name, schema in openapi_schemas().items():
        assert schemas[name] == schema, name
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    errors = {
        (path, method, status): response
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status[0] in "45" and (path, status) != ("/readyz", "503")  # the probe: Health
    }
    assert ("/v1/models", "post", "409") in errors and ("/v1/records", "post", "413") in errors
    for where, response in errors.items():
        assert response["content"] == {"application/json": {"schema": error_ref}}, where
    for path in doc["paths"]:  # anything may fail unexpectedly
        for method in doc["paths"][path]:
            assert (path, method, "500") in errors, path


def test_the_report_of_a_registered_model_is_html(
    client: httpx.Client, monitor: MonitorProcess, registrations: dict[str, Any]
) -> None:
    body = registrations["good"].model_dump(by_alias=True, mode="json")
    assert client.post("/v1/models", json=body, headers=monitor.auth).status_code in (200, 201)
    resp = client.get(f"/reports/{body['model']}", timeout=120)
    assert resp.status_code == 200, resp.text[:2000]
    assert resp.headers["content-type"].startswith("text/html")
    assert body["version"] in resp.text


def test_the_background_analysis_turns_records_into_chunks_and_metrics(
    tmp_path: Path,
    backend_where: Where,
    registrations: dict[str, Any],
    split: Any,
    schema: Any,
) -> None:
    """The analysis hook end to end: real registration, real replay rows, real cycle (in the
    analysis worker process, which opens the same database), on both backends."""
    import time

    import xgboost

    from bentos.training.data import LABEL_COLUMN, records

    reg = registrations["good"]
    booster = xgboost.Booster()
    booster.load_model(bytearray(reg.artifact_bytes()))
    rows = split.replay.iloc[:500]
    scores = booster.inplace_predict(schema.to_matrix(rows))
    features = records(rows, schema)
    batch = [
        {
            "prediction_id": f"bg-{i}",
            "model": reg.model,
            "version": reg.version,
            "timestamp": "2013-07-01T00:00:00Z",
            "features": feats,
            "probability": float(p),
            "predicted_class": int(p >= schema.threshold),
        }
        for i, (feats, p) in enumerate(zip(features, scores, strict=True))
    ]
    labels = [
        {"prediction_id": f"bg-{i}", "label": int(y)} for i, y in enumerate(rows[LABEL_COLUMN])
    ]
    env = {"MONITOR_CHUNK_SIZE": "250", **backend_where.env()}
    with (
        running_monitor(
            tmp_path, db_path=backend_where.db_path, env=env, analysis_interval_seconds=1
        ) as mon,
        httpx.Client(base_url=mon.url, timeout=60, auth=RoleAuth(mon)) as client,
    ):
        body = reg.model_dump(by_alias=True, mode="json")
        assert client.post("/v1/models", json=body, headers=mon.auth).status_code == 201
        assert client.post("/v1/records", json={"records": batch}).status_code == 202
        assert client.post("/v1/labels", json={"labels": labels}).status_code == 202
        deadline = time.monotonic() + 180
        chunks: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(chunks) < 2:
            chunks = client.get(f"/v1/models/{reg.model}/chunks").json()
            time.sleep(1)
        assert len(chunks) == 2, mon.log()
        assert [c["rows"] for c in chunks] == [250, 250]
        assert chunks[0]["estimated"]["roc_auc"]["value"] is not None
        assert chunks[0]["labelled_rows"] == 250
        exposition = client.get("/metrics").text
    estimated = [
        s
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == "modelguard_estimated_performance" and s.labels["version"] == reg.version
    ]
    assert estimated and all(0 <= s.value <= 1 for s in estimated)
    if backend_where.database_url:  # the chunks are on the server, not in a file
        assert not backend_where.db_path.exists()
        with open_store(backend_where) as store:
            assert [c.rows for c in store.chunks(reg.model, reg.version)] == [250, 250]

"""The shipped predictor over real HTTP: a real `bentoml serve` subprocess, good and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pandas as pd
import pytest
import xgboost as xgb

from bentos.training.data import Split, records
from contract.errors import ErrorBody, openapi_schemas
from contract.schema import ModelSchema
from replay.launcher import Process
from tests.support.predictor import running_predictor

MAX_BATCH = 50


@pytest.fixture(scope="module")
def predictor(
    trained_models: dict[str, str], bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    env = {
        "BENTOML_HOME": str(bentoml_home),
        "PREDICTOR_MODEL_TAG": trained_models["good"],
        "PREDICTOR_MAX_BATCH": str(MAX_BATCH),
        "PREDICTOR_EXPECTED_VERSION": trained_models["good"].split(":")[1],
    }
    log = tmp_path_factory.mktemp("predictor") / "serve.log"
    with running_predictor(env, log) as proc:
        yield proc


@pytest.fixture(scope="module")
def sample(split: Split, schema: ModelSchema) -> pd.DataFrame:
    valid = split.replay[schema.valid_rows(split.replay)]
    # Rows with missing values on purpose: nullable fields must pass as null.
    return pd.concat(
        [valid[valid["wind_gust"].isna()].head(3), valid[valid["wind_gust"].notna()].head(3)]
    )


def post(url: str, body: Any, path: str = "/predict") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        url + path, content=content, headers={"Content-Type": "application/json"}, timeout=30
    )


def test_scores_match_the_model_in_the_store(
    predictor: Process,
    sample: pd.DataFrame,
    schema: ModelSchema,
    trained_models: dict[str, str],
) -> None:
    resp = post(predictor.url, {"records": records(sample, schema)})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    model = bentoml.models.get(trained_models["good"])
    booster = xgb.Booster()
    booster.load_model(model.path_of("saved_model.ubj"))
    expected = booster.inplace_predict(schema.to_matrix(sample))
    threshold = ModelSchema.model_validate_json(str(model.info.metadata["schema"])).threshold
    assert [o["probability"] for o in out] == pytest.approx(expected.tolist(), abs=1e-7)
    assert [o["predicted_class"] for o in out] == [int(p >= threshold) for p in expected]
    assert {o["model_version"] for o in out} == {model.tag.version}
    ids = [o["prediction_id"] for o in out]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 and i[12] == "4" for i in ids)


def test_batch_endpoint_takes_json_lines(
    predictor: Process, sample: pd.DataFrame, schema: ModelSchema
) -> None:
    lines = "\n".join(json.dumps(r) for r in records(sample, schema)).encode()
    resp = httpx.post(
        predictor.url + "/predict_batch",
        content=lines,
        headers={"Content-Type": "application/x-ndjson"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert len(resp.json()) == len(sample)
    same = post(predictor.url, {"records": records(sample, schema)}, "/predict_batch").json()
    assert [o["probability"] for o in same] == [o["probability"] for o in resp.json()]


def error_body(resp: httpx.Response) -> ErrorBody:
    """The response's body, which must be exactly an ErrorBody (no other keys)."""
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    return ErrorBody.model_validate_json(resp.content, strict=True)


def _with(rec: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**rec, **changes}
    return {k: v for k, v in out.items() if v != "<absent>"}


BAD_RECORDS: dict[str, tuple[dict[str, Any], str]] = {
    "missing field": ({"temp": "<absent>"}, "records[1].temp: Field required"),
    "extra field": ({"colour": 3}, "records[1].colour: Extra inputs are not permitted"),
    "non-numeric": ({"dewp": "wet"}, "records[1].dewp: Input should be a valid number"),
    "null not nullable": ({"humid": None}, "records[1].humid"),
    "out of range": ({"humid": 170}, "records[1].humid: Input should be less than or equal to 100"),
    "below range": (
        {"pressure": 12},
        "records[1].pressure: Input should be greater than or equal to 900",
    ),
    "unknown category": ({"origin": "XYZ"}, "records[1].origin: unknown category"),
    "float for int": ({"hour": 5.5}, "records[1].hour: Input should be a valid integer"),
    "bool for number": ({"temp": True}, "records[1].temp"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_bad_record_is_a_400_naming_index_and_field(
    predictor: Process, sample: pd.DataFrame, schema: ModelSchema, case: str
) -> None:
    change, expected = BAD_RECORDS[case]
    good = records(sample.head(2), schema)
    resp = post(predictor.url, {"records": [good[0], _with(good[1], **change)]})
    assert resp.status_code == 400, resp.text
    body = error_body(resp)
    assert expected in body.error, body
    field, _, problem = expected.partition(": ")
    assert [e.loc for e in body.errors] == [field]
    assert problem in body.errors[0].msg


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_inf_literals_are_refused(
    predictor: Process, sample: pd.DataFrame, schema: ModelSchema, literal: str
) -> None:
    rec = records(sample.head(1), schema)[0]
    text = json.dumps({"records": [rec, {**rec, "temp": 0.123456}]}).replace("0.123456", literal)
    resp = post(predictor.url, text.encode())
    assert resp.status_code == 400, resp.text
    assert "records[1].temp: Input should be a finite number" in error_body(resp).error


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (b'{"records": [', 400, "body: Invalid JSON"),
        (b"", 400, "records: Field required"),
        (b"[1, 2]", 400, "Input should be an object"),
        (b'{"rows": []}', 400, "records: Field required"),
        (b'{"records": []}', 400, "records: List should have at least 1 item"),
        (b'{"records": {"temp": 1}}', 400, "records: Input should be a valid array"),
        (b'{"records": [17]}', 400, "records[0]: Input should be an object"),
    ],
)
def test_malformed_bodies_are_400(
    predictor: Process, body: bytes, status: int, expected: str
) -> None:
    resp = post(predictor.url, body)
    assert resp.status_code == status, resp.text
    assert expected in error_body(resp).error


def test_oversized_batch_is_413(
    predictor: Process, sample: pd.DataFrame, schema: ModelSchema
) -> None:
    rec = records(sample.head(1), schema)[0]
    resp = post(predictor.url, {"records": [rec] * (MAX_BATCH + 1)})
    assert resp.status_code == 413, resp.text
    assert f"at most {MAX_BATCH} items" in error_body(resp).error
    assert [e.loc for e in error_body(resp).errors] == ["records"]
    assert post(predictor.url, {"records": [rec] * MAX_BATCH}).status_code == 200


def test_openapi_describes_fields_ranges_and_response(
    predictor: Process, schema: ModelSchema
) -> None:
    doc = httpx.get(predictor.url + "/docs.json", timeout=10).json()
    text = json.dumps(doc)
    schemas = doc["components"]["schemas"]
    record = schemas["Record"]
    assert set(record["required"]) == set(schema.feature_names)
    assert record["additionalProperties"] is False
    assert record["properties"]["humid"]["maximum"] == 100
    assert record["properties"]["humid"]["minimum"] == 0
    assert {"type": "null"} in record["properties"]["wind_gust"]["anyOf"]
    assert record["properties"]["origin"]["enum"] == ["EWR", "JFK", "LGA"]
    assert "prediction_id" in text and "predicted_class" in text and "model_version" in text
    paths = doc["paths"]
    assert "/predict" in paths and "/predict_batch" in paths


def test_openapi_gives_the_error_answers_the_shared_error_body(predictor: Process) -> None:
    """The same `ErrorBody` and `FieldError` schemas as the monitor's /openapi.json
    (test_monitor_api.py compares that one with `openapi_schemas()` too)."""
    doc = httpx.get(predictor.url + "/docs.json", timeout=10).json()
    schemas = doc["components"]["schemas"]
    for name, schema in openapi_schemas().items():
        assert schemas[name] == schema, name
    # BentoML's generic {"error", "detail"} bodies are not what these routes answer.
    assert not {"InvalidArgument", "NotFound", "InternalServerError"} & set(schemas)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for route in ("/predict", "/predict_batch"):
        responses = doc["paths"][route]["post"]["responses"]
        assert set(responses) == {"200", "400", "413", "415", "500"}, route
        for status in ("400", "413", "415", "500"):
            assert responses[status]["content"] == error, (route, status)


def test_health_and_metrics(predictor: Process, trained_models: dict[str, str]) -> None:
    assert httpx.get(predictor.url + "/livez").status_code == 200
    assert httpx.get(predictor.url + "/readyz").status_code == 200
    metrics = httpx.get(predictor.url + "/metrics").text
    version = trained_models["good"].split(":")[1]
    assert (
        f'modelguard_predictor_model_info{{model="rain_forecast",version="{version}"}} 1.0'
        in metrics
    )
    assert "bentoml_service_request_total" in metrics
    assert "phone" not in predictor.log().lower()


def test_not_ready_when_declared_version_differs(
    trained_models: dict[str, str],
    bentoml_home: Path,
    tmp_path: Path,
    schema: ModelSchema,
    sample: pd.DataFrame,
) -> None:
    env = {
        "BENTOML_HOME": str(bentoml_home),
        "PREDICTOR_MODEL_TAG": trained_models["good"],
        "PREDICTOR_EXPECTED_VERSION": trained_models["retrain"].split(":")[1],
    }
    with running_predictor(env, tmp_path / "serve.log", wait_ready=False) as proc:
        assert httpx.get(proc.url + "/livez").status_code == 200
        assert httpx.get(proc.url + "/readyz").status_code == 503
        assert "the pod declares version" in proc.log()


def _worker_connections(proc: Process) -> dict[int, int]:
    """Established connections to the server's port held by each worker process."""
    import psutil

    root = psutil.Process(proc.popen.pid)
    held: dict[int, int] = {}
    for child in root.children(recursive=True):
        if "_bentoml_impl.worker.service" not in " ".join(child.cmdline()):
            continue
        conns = child.net_connections(kind="tcp")
        held[child.pid] = sum(
            1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == proc.port
        )
    return held


def test_two_workers_share_keep_alive_connections_and_routed_path_answers_the_same(
    predictor: Process,
    sample: pd.DataFrame,
    schema: ModelSchema,
    trained_models: dict[str, str],
    bentoml_home: Path,
    tmp_path: Path,
) -> None:
    """PREDICTOR_WORKERS=2: 16 keep-alive connections land in both workers (one SO_REUSEPORT
    socket each; BentoML's shared socket let one worker take them all). Served with the fast
    path off, the routed BentoML API answers what the fast path (`predictor`) answers."""
    env = {
        "BENTOML_HOME": str(bentoml_home),
        "PREDICTOR_MODEL_TAG": trained_models["good"],
        "PREDICTOR_MAX_BATCH": str(MAX_BATCH),
        "PREDICTOR_WORKERS": "2",
        "PREDICTOR_FAST_PATH": "false",
    }
    body = {"records": records(sample, schema)[:1]}
    bad = {"records": [_with(records(sample, schema)[0], humid=101)]}
    with running_predictor(env, tmp_path / "serve.log") as routed:
        clients = [httpx.Client(base_url=routed.url, timeout=30) for _ in range(16)]
        try:
            for client in clients:
                assert client.post("/predict", json=body).status_code == 200
            held = _worker_connections(routed)
        finally:
            for client in clients:
                client.close()
        assert len(held) == 2 and all(n > 0 for n in held.values()), held
        assert sum(held.values()) == 16, held
        docs = [httpx.get(u + "/docs.json").content for u in (predictor.url, routed.url)]
        assert docs[0] == docs[1]  # the fast path leaves the OpenAPI document as it was
        payloads: list[Any] = [bad, b"{", {"records": []}]
        for payload in payloads:
            fast, slow = post(predictor.url, payload), post(routed.url, payload)
            assert (fast.status_code, fast.content) == (slow.status_code, slow.content)
        fast, slow = post(predictor.url, body), post(routed.url, body)
        assert fast.status_code == slow.status_code == 200
        assert fast.json()[0]["probability"] == slow.json()[0]["probability"]
        assert fast.headers["server"] == slow.headers["server"]
        explained = [
            post(u, body, "/predict?explain=3").json()[0] for u in (predictor.url, routed.url)
        ]
        assert explained[0]["explanation"] == explained[1]["explanation"]

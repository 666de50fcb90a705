"""Both servers over real HTTP against bodies meant to crash or bloat them: oversized (declared
and chunked), deeply nested, NDJSON with two records on one line, a text/plain body. Every
one is refused with an `ErrorBody`, memory stays bounded, and the servers keep serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil
import pytest

from bentos.training.data import Split, records
from contract.errors import ErrorBody
from contract.schema import ModelSchema
from replay.launcher import Process
from tests.support.monitor import RoleAuth, running_monitor
from tests.support.predictor import running_predictor
from tests.support.records import served

MONITOR_LIMIT = 8 * 1024 * 1024
PREDICTOR_LIMIT = 256 * 1024
DEEP = b"[" * 100_000 + b"]" * 100_000


def error_body(resp: httpx.Response) -> ErrorBody:
    assert resp.headers["content-type"].startswith("application/json"), resp.text[:300]
    return ErrorBody.model_validate_json(resp.content, strict=True)


def chunked(total: int, piece: bytes = b" " * 65536) -> Iterator[bytes]:
    """A body of `total` bytes sent with Transfer-Encoding: chunked (no Content-Length)."""
    sent = 0
    yield b'{"records": ['
    while sent < total:
        yield piece
        sent += len(piece)
    yield b"]}"


def tree_rss(proc: Process) -> int:
    """Resident bytes of the server process and all its children (BentoML's workers)."""
    root = psutil.Process(proc.popen.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def post_chunked(client: httpx.Client, path: str, total: int, **kw: Any) -> httpx.Response:
    """POST a chunked body; the server may answer 413 and close before it is all sent."""
    try:
        return client.post(path, content=chunked(total), **kw)
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        pytest.fail(f"the server closed the connection without an answer: {exc!r}")


# ---------------------------------------------------------------- monitor


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory, registrations: dict[str, Any]) -> Any:
    env = {"MONITOR_MAX_BODY_BYTES": str(MONITOR_LIMIT)}
    with running_monitor(tmp_path_factory.mktemp("monitor"), env=env) as mon:
        yield mon


def test_monitor_refuses_bodies_over_the_limit_declared_or_chunked(monitor: Any) -> None:
    with httpx.Client(base_url=monitor.url, auth=RoleAuth(monitor), timeout=60) as client:
        declared = client.post(
            "/v1/records",
            content=b" " * (MONITOR_LIMIT + 1),
            headers={"Content-Type": "application/json"},
        )
        assert declared.status_code == 413, declared.text
        assert [e.loc for e in error_body(declared).errors] == ["body"]

        streamed = post_chunked(
            client, "/v1/labels", 8 * MONITOR_LIMIT, headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413, streamed.text
        assert [e.loc for e in error_body(streamed).errors] == ["body"]
        assert client.get("/livez").status_code == 200


def test_monitor_refuses_deep_json_text_plain_and_keeps_serving(
    monitor: Any, registrations: dict[str, Any], split: Split
) -> None:
    good = registrations["good"]
    with httpx.Client(base_url=monitor.url, auth=RoleAuth(monitor), timeout=60) as client:
        deep = client.post(
            "/v1/records",
            content=b'{"records": ' + DEEP[:20_000] + DEEP[-20_000:] + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert deep.status_code == 400, deep.text[:500]
        assert "recursion" in error_body(deep).error

        _, labels = served(split, good, 0, 5, "bounded")
        text = client.post(
            "/v1/labels",
            content=json.dumps({"labels": labels}).encode(),
            headers={"Content-Type": "text/plain"},
        )
        assert text.status_code == 415, text.text
        assert [e.loc for e in error_body(text).errors] == ["body"]

        # Still serving: registration and ingest work as before.
        body = good.model_dump(by_alias=True, mode="json")
        assert client.post("/v1/models", json=body).status_code in (200, 201)
        assert client.post("/v1/labels", json={"labels": labels}).json() == {"accepted": 5}
        assert client.get("/livez").status_code == 200


# ---------------------------------------------------------------- predictor


@pytest.fixture(scope="module")
def predictor(
    trained_models: dict[str, str], bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    env = {
        "BENTOML_HOME": str(bentoml_home),
        "PREDICTOR_MODEL_TAG": trained_models["good"],
        "PREDICTOR_MAX_BODY_BYTES": str(PREDICTOR_LIMIT),
    }
    with running_predictor(env, tmp_path_factory.mktemp("predictor") / "serve.log") as proc:
        yield proc


@pytest.fixture(scope="module")
def rows(split: Split, schema: ModelSchema) -> list[dict[str, Any]]:
    valid = split.replay[schema.valid_rows(split.replay)]
    return records(pd.DataFrame(valid.head(3)), schema)


@pytest.mark.parametrize("path", ["/predict", "/predict_batch"])
def test_predictor_refuses_oversized_bodies_while_they_stream(
    predictor: Process, path: str
) -> None:
    with httpx.Client(base_url=predictor.url, timeout=120) as client:
        before = tree_rss(predictor)
        declared = client.post(
            path,
            content=b" " * (PREDICTOR_LIMIT + 1),
            headers={"Content-Type": "application/json"},
        )
        assert declared.status_code == 413, declared.text
        assert [e.loc for e in error_body(declared).errors] == ["body"]
        # 200 MB chunked: refused once past the limit, never read whole.
        streamed = post_chunked(
            client, path, 200 * 1024 * 1024, headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413, streamed.text
        assert tree_rss(predictor) - before < 64 * 1024 * 1024
        assert client.get("/livez").status_code == 200


def test_predictor_refuses_deep_json_ndjson_pairs_and_text_plain(
    predictor: Process, rows: list[dict[str, Any]]
) -> None:
    with httpx.Client(base_url=predictor.url, timeout=60) as client:
        deep = client.post(
            "/predict",
            content=b'{"records": ' + DEEP[:50_000] + DEEP[-50_000:] + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert deep.status_code == 400, deep.text[:500]
        assert [e.loc for e in error_body(deep).errors] == ["body"]

        one, two = (json.dumps(r) for r in rows[:2])
        pair = client.post(
            "/predict_batch",
            content=f"{one},{two}\n{one}\n".encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert pair.status_code == 400, pair.text
        assert [e.loc for e in error_body(pair).errors] == ["records[0]"]

        deep_line = client.post(
            "/predict_batch",
            content=one.encode() + b"\n" + DEEP[:50_000] + DEEP[-50_000:] + b"\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert deep_line.status_code == 400, deep_line.text[:500]
        assert [e.loc for e in error_body(deep_line).errors] == ["records[1]"]

        body = json.dumps({"records": rows}).encode()
        for media in ("text/plain", "application/x-www-form-urlencoded"):
            refused = client.post("/predict", content=body, headers={"Content-Type": media})
            assert refused.status_code == 415, refused.text
            assert [e.loc for e in error_body(refused).errors] == ["body"]
        # NDJSON is the batch route's; /predict takes JSON only.
        lines = "\n".join(json.dumps(r) for r in rows).encode()
        ndjson = {"Content-Type": "application/x-ndjson"}
        assert client.post("/predict", content=lines, headers=ndjson).status_code == 415

        # Still serving: the same records, well formed, are scored.
        scored = client.post("/predict_batch", content=lines, headers=ndjson)
        assert scored.status_code == 200, scored.text
        assert len(scored.json()) == len(rows)
        ok = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
        assert ok.status_code == 200 and len(ok.json()) == len(rows)

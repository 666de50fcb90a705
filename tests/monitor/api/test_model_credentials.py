"""Per-model credentials (monitor/api/auth.py, monitor/api/model_tokens.py) through FastAPI's
TestClient over a real SQLite store: model A's predictor and labels tokens write only A, the
global tokens write no model that has its own, and a refusal stores nothing."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from monitor.api import model_tokens
from monitor.api.auth import Guard
from monitor.api.model_tokens import ModelTokens, parse
from monitor.core.settings import AnalysisSettings, MonitorSettings, StoreSettings, TokenSettings
from monitor.server import MonitorServer
from monitor.store.sqlite import SqliteStore
from tests.support.candidates import register_bare

GLOBAL = {"predictor": "global-predictor-token", "labels": "global-labels-token"}
OPERATOR = "global-operator-token"
CREDS = {
    "a": {"predictor": "model-a-predictor-token", "labels": "model-a-labels-token"},
    "b": {"predictor": "model-b-predictor-token", "labels": "model-b-labels-token"},
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_tokens(path: Path, creds: dict[str, dict[str, str]]) -> None:
    """B's tokens stored hashed, the others in clear: both forms are accepted."""
    shown = {
        model: {
            role: f"sha256:{hashlib.sha256(t.encode()).hexdigest()}" if model == "b" else t
            for role, t in roles.items()
        }
        for model, roles in creds.items()
    }
    path.write_text(json.dumps(shown))


def settings(tmp_path: Path, tokens_file: Path | None) -> MonitorSettings:
    return MonitorSettings(
        store=StoreSettings(db_path=tmp_path / "m.db"),
        analysis=AnalysisSettings(worker=False),
        tokens=TokenSettings(
            predictor=SecretStr(GLOBAL["predictor"]),
            labels=SecretStr(GLOBAL["labels"]),
            operator=SecretStr(OPERATOR),
            model_tokens_file=tokens_file,
        ),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "m.db") as st:
        for model in ("a", "b", "c"):  # c: no credentials of its own
            register_bare(st, model, "v1")
        yield st


@pytest.fixture
def client(tmp_path: Path, store: SqliteStore) -> Iterator[TestClient]:
    path = tmp_path / "model-tokens.json"
    write_tokens(path, CREDS)
    server = MonitorServer(settings(tmp_path, path), store, background=False)
    with TestClient(server.app) as c:
        yield c


def record(model: str, pid: str | None = None) -> dict[str, Any]:
    return {
        "prediction_id": pid or uuid.uuid4().hex,
        "model": model,
        "version": "v1",
        "timestamp": "2026-01-01T00:00:00Z",
        "features": {"x": 1.0},
        "probability": 0.4,
        "predicted_class": 0,
    }


def rows(store: SqliteStore, table: str, model: str) -> int:
    conn = store._reader()
    if table == "records":
        sql = "SELECT count(*) FROM records WHERE model = ?"
    else:
        sql = "SELECT count(*) FROM labels l JOIN records r USING (prediction_id) WHERE r.model = ?"
    return int(conn.execute(sql, (model,)).fetchone()[0])


def post_records(client: TestClient, token: str, *models: str) -> Any:
    return client.post(
        "/v1/records", json={"records": [record(m) for m in models]}, headers=bearer(token)
    )


def test_a_credential_writes_a_and_is_refused_for_b_whole_batch(
    client: TestClient, store: SqliteStore
) -> None:
    a = CREDS["a"]["predictor"]
    assert post_records(client, a, "a", "a").status_code == 202
    before = rows(store, "records", "a"), rows(store, "records", "b")
    refused = post_records(client, a, "a", "b", "a")
    assert refused.status_code == 403
    body = refused.json()
    assert "model 'a'" in body["error"] and "model 'b'" in body["error"]
    assert a not in refused.text
    assert body["errors"][0]["loc"] == "records[1].model"
    assert (rows(store, "records", "a"), rows(store, "records", "b")) == before == (2, 0)
    # B's own credential (stored hashed in the file) writes B.
    assert post_records(client, CREDS["b"]["predictor"], "b").status_code == 202


def test_global_predictor_token_writes_only_models_without_credentials(
    client: TestClient, store: SqliteStore
) -> None:
    assert post_records(client, GLOBAL["predictor"], "c").status_code == 202
    refused = post_records(client, GLOBAL["predictor"], "c", "a")
    assert refused.status_code == 403
    assert "model 'a' has its own credentials" in refused.json()["error"]
    assert rows(store, "records", "c") == 1 and rows(store, "records", "a") == 0
    # The operator token stays all-models; a labels credential is not a predictor's.
    assert post_records(client, OPERATOR, "a").status_code == 403  # records need predictor
    assert post_records(client, CREDS["a"]["labels"], "a").status_code == 403


def test_labels_only_for_the_credential_model_and_only_once_the_record_is_stored(
    client: TestClient, store: SqliteStore
) -> None:
    ids = {m: uuid.uuid4().hex for m in ("a", "b")}
    for model, pid in ids.items():
        resp = client.post(
            "/v1/records",
            json={"records": [record(model, pid)]},
            headers=bearer(CREDS[model]["predictor"]),
        )
        assert resp.status_code == 202

    def label(token: str, *pids: str) -> Any:
        body = {"labels": [{"prediction_id": p, "label": 1} for p in pids]}
        return client.post("/v1/labels", json=body, headers=bearer(token))

    a_labels = CREDS["a"]["labels"]
    refused = label(a_labels, ids["a"], ids["b"])
    assert refused.status_code == 403
    assert "model 'b'" in refused.json()["error"]
    assert refused.json()["errors"][0]["loc"] == "labels[1].prediction_id"
    early = label(a_labels, ids["a"], "not-recorded-yet")
    assert early.status_code == 425 and early.headers["Retry-After"] == "5"
    assert rows(store, "labels", "a") == rows(store, "labels", "b") == 0
    assert label(GLOBAL["labels"], ids["b"]).status_code == 403
    assert label(a_labels, ids["a"]).status_code == 202
    assert label(CREDS["b"]["labels"], ids["b"]).status_code == 202
    assert rows(store, "labels", "a") == rows(store, "labels", "b") == 1


def test_registration_of_another_model_refused_before_vetting(client: TestClient) -> None:
    body = {
        "model": "b",
        "version": "r1-0000000000",
        "schema": {"features": [{"name": "x"}], "label": {"name": "y"}},
        "reference": [{"x": float(i), "y": i % 2, "probability": 0.5} for i in range(100)],
        "artifact": "bm90IGEgYm9vc3Rlcg==",
    }
    for token in (CREDS["a"]["predictor"], GLOBAL["predictor"]):
        resp = client.post("/v1/models", json=body, headers=bearer(token))
        assert resp.status_code == 403, resp.text
        assert "model 'b'" in resp.json()["error"]
        assert resp.json()["errors"][0]["loc"] == "model"
    # A's credential gets past the model check to the digest check (not 403 on the model).
    own = client.post(
        "/v1/models", json={**body, "model": "a"}, headers=bearer(CREDS["a"]["predictor"])
    )
    assert own.status_code == 403 and "sha256 prefix" in own.json()["error"]


def test_file_is_reloaded_when_it_changes_and_a_bad_file_keeps_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_tokens, "RECHECK_SECONDS", 0.0)
    path = tmp_path / "t.json"
    write_tokens(path, {"a": CREDS["a"]})
    tokens = ModelTokens(path)
    assert tokens.models() == {"a"}
    write_tokens(path, CREDS)
    assert tokens.models() == {"a", "b"}
    path.write_text("{not json")
    assert tokens.models() == {"a", "b"}  # the last good mapping stays
    path.unlink()
    assert tokens.models() == {"a", "b"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"a": {"predictor": "short"}}, "a.predictor: String should have at least 16"),
        ({"a": {"predictor": "p" * 16}}, "a.labels: Field required"),
        ({"Bad Name": CREDS["a"]}, "Bad Name.[key]"),
        ({"a": CREDS["a"], "b": {**CREDS["b"], "labels": CREDS["a"]["labels"]}}, "same token"),
    ],
)
def test_bad_file_is_refused_naming_the_field_not_the_token(
    tmp_path: Path, content: Any, problem: str
) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse(json.dumps(content).encode(), "f.json")
    assert problem in str(info.value)
    assert CREDS["a"]["labels"] not in str(info.value)


def test_a_per_model_token_may_not_be_a_global_token(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"a": {**CREDS["a"], "predictor": GLOBAL["labels"]}}))
    with pytest.raises(ValueError, match="token of a global role"):
        Guard(settings(tmp_path, path))


def test_global_tokens_too_keeps_the_global_token_working_during_a_migration(
    tmp_path: Path, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model moving to its own credentials: with `global_tokens_too` the predictors not yet
    rolled keep shipping with the global token (a refused batch is dropped by the predictor);
    removing the flag closes the model to it, without a restart."""
    monkeypatch.setattr(model_tokens, "RECHECK_SECONDS", 0.0)
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"a": {**CREDS["a"], "global_tokens_too": True}}))
    server = MonitorServer(settings(tmp_path, path), store, background=False)
    with TestClient(server.app) as client:
        assert post_records(client, GLOBAL["predictor"], "a").status_code == 202
        assert post_records(client, CREDS["a"]["predictor"], "a").status_code == 202
        assert post_records(client, CREDS["a"]["predictor"], "b").status_code == 403
        path.write_text(json.dumps({"a": CREDS["a"]}))
        assert post_records(client, GLOBAL["predictor"], "a").status_code == 403
    assert rows(store, "records", "a") == 2 and rows(store, "records", "b") == 0

"""Per-model credentials over real loopback HTTP against `python -m monitor serve`
(docs/monitor.md#trust-boundary): model A's predictor and labels tokens are refused for B's
records, labels and registration with a 403 and leave B's stored data unchanged; they work
for A; a model added to the mounted file gets working credentials without a restart."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.store.sqlite import SqliteStore
from tests.support.monitor import MonitorProcess, running_monitor
from tests.support.records import served

pytestmark = pytest.mark.slow
CREDS = {
    m: {"predictor": f"{m}-predictor-credential", "labels": f"{m}-labels-credential"}
    for m in ("model-a", "model-b", "model-c")
}


def write_atomically(path: Path, models: list[str]) -> None:
    """As the kubelet updates a mounted Secret: a new file swapped in by rename. B's tokens
    are stored hashed."""
    shown = {
        m: {
            role: f"sha256:{hashlib.sha256(t.encode()).hexdigest()}" if m == "model-b" else t
            for role, t in CREDS[m].items()
        }
        for m in models
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(shown))
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("creds") / "model-tokens.json"
    write_atomically(path, ["model-a", "model-b"])
    return path


@pytest.fixture(scope="module")
def monitor(
    tmp_path_factory: pytest.TempPathFactory, tokens_file: Path
) -> Iterator[MonitorProcess]:
    env = {"MONITOR_MODEL_TOKENS_FILE": str(tokens_file)}
    with running_monitor(tmp_path_factory.mktemp("percred"), env=env) as proc:
        yield proc


def bearer(model: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {CREDS[model][role]}"}


def register(monitor: MonitorProcess, reg: Any, model: str, headers: dict[str, str]) -> Any:
    body = {**reg.model_dump(by_alias=True, mode="json"), "model": model}
    return httpx.post(f"{monitor.url}/v1/models", json=body, headers=headers, timeout=120)


def records_for(reg: Any, split: Any, model: str, n: int = 10) -> list[dict[str, Any]]:
    out, _ = served(split, reg, 0, n, uuid.uuid4().hex)
    return [{**r, "model": model} for r in out]


def counts(monitor: MonitorProcess, model: str) -> tuple[int, ...]:
    """model's records, labels (through their records) and registered versions."""
    with SqliteStore(monitor.db_path) as store:
        conn = store._reader()
        return tuple(
            int(conn.execute(sql, (model,)).fetchone()[0])
            for sql in (
                "SELECT count(*) FROM records WHERE model = ?",
                "SELECT count(*) FROM labels l JOIN records r USING (prediction_id)"
                " WHERE r.model = ?",
                "SELECT count(*) FROM model_versions WHERE model = ?",
            )
        )


def post(monitor: MonitorProcess, path: str, body: Any, headers: dict[str, str]) -> Any:
    return httpx.post(f"{monitor.url}{path}", json=body, headers=headers, timeout=60)


def test_a_credential_changes_nothing_of_b_and_works_for_a(
    monitor: MonitorProcess, registrations: dict[str, Any], split: Any
) -> None:
    reg = registrations["good"]
    assert register(monitor, reg, "model-a", bearer("model-a", "predictor")).status_code == 201
    assert register(monitor, reg, "model-b", bearer("model-b", "predictor")).status_code == 201
    b_records = records_for(reg, split, "model-b")
    stored = post(monitor, "/v1/records", {"records": b_records}, bearer("model-b", "predictor"))
    assert stored.status_code == 202
    b_labels = [{"prediction_id": r["prediction_id"], "label": 1} for r in b_records[:5]]
    labelled = post(monitor, "/v1/labels", {"labels": b_labels}, bearer("model-b", "labels"))
    assert labelled.status_code == 202
    before = counts(monitor, "model-b")
    assert before == (10, 5, 1)

    a = bearer("model-a", "predictor")
    mixed = records_for(reg, split, "model-a", 3) + records_for(reg, split, "model-b", 2)
    refused = post(monitor, "/v1/records", {"records": mixed}, a)
    assert refused.status_code == 403
    assert "'model-b'" in refused.json()["error"]
    assert CREDS["model-a"]["predictor"] not in refused.text
    relabel = [{"prediction_id": r["prediction_id"], "label": 0} for r in b_records]
    refused = post(monitor, "/v1/labels", {"labels": relabel}, bearer("model-a", "labels"))
    assert refused.status_code == 403 and "'model-b'" in refused.json()["error"]
    other_version = {**reg.model_dump(by_alias=True, mode="json"), "model": "model-b"}
    other_version["release"] = "another"
    refused = post(monitor, "/v1/models", other_version, a)
    assert refused.status_code == 403 and "'model-b'" in refused.json()["error"]
    # the global predictor token writes no model that has its own credentials
    refused = post(monitor, "/v1/records", {"records": b_records[:1]}, monitor.headers("predictor"))
    assert refused.status_code == 403
    assert counts(monitor, "model-b") == before
    assert counts(monitor, "model-a") == (0, 0, 1)
    with SqliteStore(monitor.db_path) as store:
        b_labels_now = store._reader().execute(
            "SELECT count(*) FROM labels l JOIN records r USING (prediction_id)"
            " WHERE r.model = 'model-b' AND l.label = 1"
        )
        assert int(b_labels_now.fetchone()[0]) == 5  # none flipped to 0

    a_records = records_for(reg, split, "model-a", 4)
    assert post(monitor, "/v1/records", {"records": a_records}, a).status_code == 202
    a_labels = [{"prediction_id": r["prediction_id"], "label": 1} for r in a_records]
    assert (
        post(monitor, "/v1/labels", {"labels": a_labels}, bearer("model-a", "labels")).status_code
        == 202
    )
    assert counts(monitor, "model-a") == (4, 4, 1)


def test_a_model_added_to_the_file_gets_working_credentials_without_restart(
    monitor: MonitorProcess, tokens_file: Path, registrations: dict[str, Any], split: Any
) -> None:
    reg = registrations["good"]
    c = bearer("model-c", "predictor")
    assert register(monitor, reg, "model-c", c).status_code == 401  # unknown token yet
    starts, pid = monitor.starts, monitor.popen.pid
    write_atomically(tokens_file, ["model-a", "model-b", "model-c"])
    deadline = time.monotonic() + 30
    while True:
        resp = register(monitor, reg, "model-c", c)
        if resp.status_code != 401 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert resp.status_code == 201, resp.text
    records = records_for(reg, split, "model-c", 3)
    assert post(monitor, "/v1/records", {"records": records}, c).status_code == 202
    assert counts(monitor, "model-c") == (3, 0, 1)
    assert (monitor.starts, monitor.popen.pid) == (starts, pid)  # no restart

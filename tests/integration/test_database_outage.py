"""A database that goes away (issue 24, item 6): a real PostgreSQL server, stopped and started
again by the test under a running monitor. While it is stopped the monitor answers fast with a
503 and Retry-After (nothing stored; a predictor's spool sends again) and /readyz is 503; after
the restart ingest works again without restarting the monitor, and every record the monitor
acknowledged is in the database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from bentos.training.data import Split
from bentos.training.data import records as records_of
from contract.errors import ErrorBody
from contract.schema import ModelSchema
from tests.support.monitor import MonitorProcess, RoleAuth, register_as, running_monitor
from tests.support.postgres import Cluster, NoServerBinariesError, running_cluster
from tests.support.predictor import running_predictor

VERSION = "v-outage"


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of this test's own: stopping it must not take the session's away."""
    try:
        with running_cluster() as cluster:
            yield cluster
    except NoServerBinariesError as missing:
        pytest.skip(str(missing))


def batch(n: int) -> list[dict[str, Any]]:
    return [
        {
            "prediction_id": uuid.uuid4().hex,
            "model": "rain_forecast",
            "version": VERSION,
            "timestamp": "2013-07-01T12:00:00Z",
            "features": {"temp": 71.1, "wind_gust": None, "origin": "EWR", "visib": 10},
            "probability": 0.42,
            "predicted_class": 0,
        }
        for _ in range(n)
    ]


def post(client: httpx.Client, records: list[dict[str, Any]]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    resp = client.post("/v1/records", json={"records": records})
    return resp, time.monotonic() - started


def stored_ids(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT prediction_id FROM records")}


def test_database_away_answers_503_fast_and_ingest_resumes_without_a_restart(
    tmp_path: Path, own_cluster: Cluster, registrations: dict[str, Any]
) -> None:
    url = own_cluster.create_database()
    acked: set[str] = set()
    with running_monitor(tmp_path / "m", env={"MONITOR_DATABASE_URL": url}) as monitor:
        register_as(monitor, registrations["good"], VERSION)
        with httpx.Client(base_url=monitor.url, timeout=30, auth=RoleAuth(monitor)) as client:
            first = batch(50)
            resp, _ = post(client, first)
            assert resp.status_code == 202, resp.text
            acked.update(r["prediction_id"] for r in first)

            own_cluster.stop()
            answers = []
            for _ in range(5):
                records = batch(20)
                resp, seconds = post(client, records)
                answers.append(seconds)
                if resp.status_code == 202:  # not expected, but then it must be stored
                    acked.update(r["prediction_id"] for r in records)
                    continue
                assert resp.status_code == 503, resp.text
                assert int(resp.headers["Retry-After"]) > 0
                ErrorBody.model_validate_json(resp.content, strict=True)
            print(f"\n503 answer times while PostgreSQL is stopped: {answers}")
            ready = client.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert client.get("/livez").status_code == 200
            assert gauge(monitor, "modelguard_monitor_store_up") == 0.0

            own_cluster.resume()
            restarted = time.monotonic()
            after = batch(50)
            deadline = restarted + 60
            while True:
                resp, _ = post(client, after)
                if resp.status_code == 202 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            print(f"ingest back {time.monotonic() - restarted:.1f}s after the restart")
            assert resp.status_code == 202, resp.text
            acked.update(r["prediction_id"] for r in after)
            assert client.get("/readyz").status_code == 200
            assert gauge(monitor, "modelguard_monitor_store_up") == 1.0
    assert acked <= stored_ids(url)


def gauge(monitor: MonitorProcess, name: str) -> float | None:
    text = httpx.get(f"{monitor.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_a_predictors_spool_holds_its_records_while_the_database_is_away(
    tmp_path: Path,
    own_cluster: Cluster,
    trained_models: dict[str, str],
    bentoml_home: Path,
    split: Split,
    schema: ModelSchema,
) -> None:
    """End to end: a real predictor ships to a real monitor on PostgreSQL; the database stops
    and starts; every prediction it answered ends up stored (0 lost)."""
    rows = records_of(split.replay[schema.valid_rows(split.replay)].head(120), schema)
    url = own_cluster.create_database()
    with running_monitor(tmp_path / "m", env={"MONITOR_DATABASE_URL": url}) as monitor:
        env = {
            "BENTOML_HOME": str(bentoml_home),
            "PREDICTOR_MODEL_TAG": trained_models["good"],
            "PREDICTOR_MONITOR_URL": monitor.url,
            "PREDICTOR_MONITOR_TOKEN": monitor.token,
            "PREDICTOR_SPOOL_DIR": str(tmp_path / "spool"),
            "PREDICTOR_SHIP_FLUSH_SECONDS": "0.2",
        }
        with running_predictor(env, tmp_path / "serve.log") as proc:
            sent = predict(proc.url, rows[:20])
            wait_stored(url, sent, 60)
            own_cluster.stop()
            for i in range(1, 6):  # the predictor keeps answering while the database is away
                sent += predict(proc.url, rows[20 * i : 20 * i + 20])
            time.sleep(3)  # its shipper meets the 503s meanwhile
            own_cluster.resume()
            restarted = time.monotonic()
            wait_stored(url, sent, 120)
            print(
                f"\nall {len(sent)} predictions stored {time.monotonic() - restarted:.1f}s"
                " after the restart"
            )
    assert set(sent) <= stored_ids(url)


def predict(url: str, recs: list[dict[str, Any]]) -> list[str]:
    resp = httpx.post(url + "/predict", json={"records": recs}, timeout=30)
    assert resp.status_code == 200, resp.text
    return [o["prediction_id"] for o in resp.json()]


def wait_stored(url: str, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if set(ids) <= stored_ids(url):
                return
        except psycopg.OperationalError:
            pass
        time.sleep(0.5)

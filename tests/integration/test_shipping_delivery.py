"""Inference records leave a real predictor and arrive, through outages and SIGTERM.

The receiver is `tests.support.predictor.RecordReceiver`, a protocol peer of the monitor's
`POST /v1/records` and `POST /v1/models` (docs/contracts.md section 3), so these tests pin the
predictor's side of the contract without depending on the monitor's implementation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bentos.training.data import Split, records
from contract.schema import ModelSchema
from tests.support.predictor import RecordReceiver, running_predictor

TOKEN = "s3cret-registration-token"


@pytest.fixture(scope="module")
def rows(split: Split, schema: ModelSchema) -> list[dict[str, Any]]:
    valid = split.replay[schema.valid_rows(split.replay)]
    return records(valid.head(400), schema)


def env_for(
    trained_models: dict[str, str], home: Path, receiver: RecordReceiver, spool: Path, **extra: str
) -> dict[str, str]:
    return {
        "BENTOML_HOME": str(home),
        "PREDICTOR_MODEL_TAG": trained_models["good"],
        "PREDICTOR_MONITOR_URL": receiver.url,
        "PREDICTOR_MONITOR_TOKEN": TOKEN,
        "PREDICTOR_SPOOL_DIR": str(spool),
        "PREDICTOR_SHIP_FLUSH_SECONDS": "0.2",
        **extra,
    }


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The predictor's /metrics: (sample name, sorted labels) -> value."""
    text = httpx.get(url + "/metrics", timeout=30).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def dropped(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    """reason -> records dropped (a reason never counted has no series: 0)."""
    return {
        dict(labels)["reason"]: v
        for (name, labels), v in metrics.items()
        if name == "modelguard_predictor_records_dropped_total"
    }


def predict(url: str, recs: list[dict[str, Any]]) -> list[str]:
    resp = httpx.post(url + "/predict", json={"records": recs}, timeout=30)
    assert resp.status_code == 200, resp.text
    return [o["prediction_id"] for o in resp.json()]


def test_records_and_registration_arrive(
    trained_models: dict[str, str], bentoml_home: Path, tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    with RecordReceiver() as receiver:
        env = env_for(trained_models, bentoml_home, receiver, tmp_path / "spool")
        with running_predictor(env, tmp_path / "serve.log") as proc:
            bad = {**rows[0], "humid": 1000}  # a refused request ships nothing
            refused = httpx.post(
                proc.url + "/predict", json={"records": [rows[1], bad]}, timeout=30
            )
            assert refused.status_code == 400
            resp = httpx.post(proc.url + "/predict", json={"records": rows[:5]}, timeout=30).json()
            assert receiver.wait_for(5) == 5
            got = {r["prediction_id"]: r for r in receiver.got.records}
            for sent, served in zip(rows[:5], resp, strict=True):
                rec = got[served["prediction_id"]]
                assert rec["features"] == sent  # exactly as received (ints compare equal to floats)
                assert rec["probability"] == served["probability"]
                assert rec["predicted_class"] == served["predicted_class"]
                assert (rec["model"], rec["version"]) == ("rain_forecast", served["model_version"])
                assert pd.Timestamp(rec["timestamp"]).tzinfo is not None
            metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for _ in range(100):  # registration runs in the background; serving did not wait
                metrics = scrape(proc.url)
                if metrics.get(("modelguard_predictor_registration_success", ())) == 1:
                    break
                receiver.wait_for(10**9, timeout=0.1)
            assert metrics.get(("modelguard_predictor_registration_success", ())) == 1
            assert metrics.get(("modelguard_predictor_records_shipped_total", ())) == 5
            assert sum(dropped(metrics).values()) == 0, dropped(metrics)
            assert receiver.count() == 5
            assert set(got) == {served["prediction_id"] for served in resp}
            reg = receiver.got.registrations[0]
            assert reg["model"] == "rain_forecast" and reg["artifact_format"] == "xgboost-ubj"
            assert reg["version"] == trained_models["good"].split(":")[1]
            assert receiver.got.auth_headers[0] == f"Bearer {TOKEN}"
            assert receiver.got.records_auth == {f"Bearer {TOKEN}"}  # records carry it too
        assert TOKEN not in proc.log()


def test_outage_loses_nothing_and_serving_continues(
    trained_models: dict[str, str], bentoml_home: Path, tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    receiver = RecordReceiver()
    receiver.up()
    try:
        env = env_for(trained_models, bentoml_home, receiver, tmp_path / "spool")
        with running_predictor(env, tmp_path / "serve.log") as proc:
            sent = predict(proc.url, rows[:10])
            assert receiver.wait_for(10) == 10
            receiver.down()
            for i in range(20):  # the predictor keeps answering while the receiver is down
                sent += predict(proc.url, rows[10 * i : 10 * i + 10])
            spooled = list((tmp_path / "spool").rglob("*.json"))
            receiver.up()
            assert receiver.wait_for(len(sent)) == len(sent)
            assert receiver.got.ids == set(sent)
            shipped = ("modelguard_predictor_records_shipped_total", ())
            for _ in range(50):  # the receiver counts a batch before its reply is acknowledged
                metrics = scrape(proc.url)
                if metrics.get(shipped) == len(sent):
                    break
                receiver.wait_for(10**9, timeout=0.1)
            assert metrics.get(shipped) == len(sent)
            assert sum(dropped(metrics).values()) == 0, dropped(metrics)
        assert spooled, "records went through the on-disk spool during the outage"
    finally:
        receiver.down()


def test_sigterm_flushes_and_a_later_process_sends_the_spool(
    trained_models: dict[str, str], bentoml_home: Path, tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    spool = tmp_path / "spool"
    receiver = RecordReceiver()
    receiver.up()
    try:
        # Records wait in the buffer (long flush interval): only the shutdown flush sends them.
        env = env_for(
            trained_models,
            bentoml_home,
            receiver,
            spool,
            PREDICTOR_SHIP_FLUSH_SECONDS="60",
            PREDICTOR_SHIP_BATCH_RECORDS="100000",
        )
        with running_predictor(env, tmp_path / "a.log") as proc:
            first = predict(proc.url, rows[:100])
            assert receiver.count() == 0
            proc.terminate()
        assert receiver.count() == 100 and receiver.got.ids == set(first)

        # Monitor down at SIGTERM: the buffer goes to the spool, the next process sends it.
        receiver.down()
        with running_predictor(env, tmp_path / "b.log") as proc:
            second = predict(proc.url, rows[100:250])
            proc.terminate()
        leftover = list(spool.rglob("*.json"))
        assert sum(int(p.stem.rsplit("-", 1)[1]) for p in leftover) == 150
        receiver.up()
        with running_predictor(env, tmp_path / "c.log") as proc:
            assert receiver.wait_for(250) == 250
            assert "adopted 150 spooled records" in proc.log()
            assert sum(dropped(scrape(proc.url)).values()) == 0
        assert receiver.got.ids == set(first) | set(second)
        assert not list(spool.rglob("*.json"))
    finally:
        receiver.down()


def test_opted_out_requests_are_counted_not_shipped_and_event_time_is_stamped(
    trained_models: dict[str, str], bentoml_home: Path, tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    with RecordReceiver() as receiver:
        env = env_for(trained_models, bentoml_home, receiver, tmp_path / "spool")
        with running_predictor(env, tmp_path / "serve.log") as proc:
            test_traffic = httpx.post(
                proc.url + "/predict",
                json={"records": rows[:3]},
                headers={"X-Modelguard-Log": "off"},
                timeout=30,
            )
            assert test_traffic.status_code == 200 and len(test_traffic.json()) == 3
            backfill = httpx.post(
                proc.url + "/predict_batch",
                json={"records": rows[3:7]},
                headers={"X-Modelguard-Event-Time": "2013-03-04T05:00:00"},
                timeout=30,
            )
            assert backfill.status_code == 200
            bad = httpx.post(
                proc.url + "/predict",
                json={"records": rows[:1]},
                headers={"X-Modelguard-Event-Time": "yesterday"},
                timeout=30,
            )
            assert bad.status_code == 400
            assert bad.json()["errors"][0]["loc"] == "x-modelguard-event-time"
            assert receiver.wait_for(4) == 4
            receiver.wait_for(10**9, timeout=1.0)  # anything else would have arrived by now
            assert receiver.count() == 4  # the opted-out records never left the predictor
            opted_out = {o["prediction_id"] for o in test_traffic.json()}
            assert not opted_out & receiver.got.ids
            assert {r["event_time"] for r in receiver.got.records} == {"2013-03-04T05:00:00+00:00"}
            metrics = scrape(proc.url)
            assert metrics.get(("modelguard_predictor_records_not_logged_total", ())) == 3
            assert sum(dropped(metrics).values()) == 0

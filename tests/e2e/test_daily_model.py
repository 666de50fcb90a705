"""A small-traffic model of a user's own, through the documented commands only.

Synthetic daily weather made here (three years, one row a day, a `season` category, every
row labelled): `modelguard schema infer` on the history, a limit added to the schema file by
hand, an XGBoost booster trained on `schema.encode`, `modelguard package`, the repo's own
`bentoml serve` with PREDICTOR_MODEL_TAG, a year of live days posted with
`X-Modelguard-Event-Time`, their labels, the real monitor with a ModelMonitor spec from
MONITOR_POLICY_FILE (30-day chunks, `season` drift ignored), and `modelguard known-good set
| status | chunks | report` (docs/your-model.md, "A small-traffic model").
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bentos.cli.schema_file import load_schema
from replay import launcher
from replay.launcher import MonitorProcess, Process
from replay.stack import wait_registered

pytestmark = pytest.mark.slow

MODEL = "daily_rain"
MODELGUARD = Path(sys.executable).with_name("modelguard")
FIRST_DAY = pd.Timestamp("2022-01-01T00:00:00Z")
LIVE_DAYS = 365  # 12 whole 30-day periods and 5 days of a 13th
WET_DAY = LIVE_DAYS - 2  # in the newest chunk, the one the gauge shows last
SEASONS = ["winter", "spring", "summer", "autumn"]


def weather(days: int, seed: int = 7) -> pd.DataFrame:
    """One row a day: temperature, humidity and rain follow the year; `season` is the
    month's; the label is rain the next day (from today's humidity and rain)."""
    rng = np.random.default_rng(seed)
    dates = FIRST_DAY + pd.to_timedelta(np.arange(days), unit="D")
    phase = 2 * np.pi * (dates.dayofyear.to_numpy() - 15) / 365.25
    temp = 12 - 9 * np.cos(phase) + rng.normal(0, 2.5, days)
    humidity = np.clip(70 + 12 * np.cos(phase) + rng.normal(0, 10, days), 20, 100)
    rain = np.where(rng.random(days) < 0.4, rng.gamma(1.5, 4.0, days), 0.0).round(1)
    logit = 0.12 * (humidity - 72) + 0.15 * rain - 0.4 + rng.normal(0, 0.8, days)
    return pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "temp": temp.round(1),
            "humidity": humidity.round(1),
            "rain": rain,
            "season": [SEASONS[(m % 12) // 3] for m in dates.month],
            "rain_tomorrow": (logit > 0).astype(int),
        }
    )


def modelguard(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MODELGUARD), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=launcher.process_env(env),
    )


def ok(*args: object, env: dict[str, str] | None = None) -> str:
    done = modelguard(*args, env=env)
    assert done.returncode == 0, f"modelguard {args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Daily:
    workdir: Path
    monitor: MonitorProcess
    predictor: Process
    version: str
    schema_file: Path
    live: pd.DataFrame
    wet: float  # the wet day's rain, past the inferred expected max
    refused: httpx.Response  # a negative rain, beyond the declared limit
    wet_answer: httpx.Response

    def cli_env(self) -> dict[str, str]:
        operator = self.monitor.tokens["operator"]
        return {
            "MODELGUARD_MONITOR_URL": self.monitor.url,
            "MODELGUARD_MONITOR_OPERATOR_TOKEN": operator,
        }


def wait_chunks(env: dict[str, str], want: int, timeout: float = 240) -> list[dict[str, Any]]:
    """`modelguard chunks --json` until `want` chunks, each with all its rows labelled."""
    deadline = time.monotonic() + timeout
    chunks: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        done = modelguard("chunks", MODEL, "--json", env=env)
        if done.returncode == 0:
            chunks = json.loads(done.stdout)
            if len(chunks) >= want and all(c["labelled_rows"] == c["rows"] for c in chunks):
                return sorted(chunks, key=lambda c: c["chunk_index"])
        time.sleep(2)
    raise AssertionError(f"never {want} labelled chunks: {[c.get('rows') for c in chunks]}")


@pytest.fixture(scope="module")
def daily(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daily]:
    d = tmp_path_factory.mktemp("daily")
    home = {"BENTOML_HOME": str(d / "bentoml")}
    data = weather(3 * 365)
    history, live = data.iloc[: 2 * 365], data.iloc[2 * 365 :].reset_index(drop=True)
    train, holdout = history.iloc[:365], history.iloc[365:]
    history.to_csv(d / "history.csv", index=False)
    holdout.to_csv(d / "holdout.csv", index=False)

    schema_file = d / "schema.yaml"
    ok("schema", "infer", d / "history.csv", "--label", "rain_tomorrow", "--time", "date",
       "--output", schema_file)  # fmt: skip
    doc = yaml.safe_load(schema_file.read_text())
    rain = next(f for f in doc["features"] if f["name"] == "rain")
    assert "limits" not in rain  # inferred: expectations only
    rain["limits"] = {"min": 0}  # declared by the user: no negative rain
    schema_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    wet = round(float(rain["expected"]["max"]) * 1.5, 1)

    schema = load_schema(schema_file)
    dtrain = xgb.DMatrix(schema.encode(train), label=train["rain_tomorrow"])
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3}, dtrain, 20)
    booster.save_model(d / "model.ubj")
    out = ok("package", d / "model.ubj", "--schema", schema_file, "--reference",
             d / "holdout.csv", "--name", MODEL, "--release", "v1", env=home)  # fmt: skip
    tag = out.strip().splitlines()[-1]
    version = tag.split(":", 1)[1]

    policy = d / "policy.yaml"
    spec = {"chunkPeriod": "30d", "drift": {"features": {"season": {"ignore": True}}}}
    policy.write_text(yaml.safe_dump({MODEL: spec}))
    monitor = launcher.monitor(
        d, "daily-token", env={"MONITOR_POLICY_FILE": str(policy), **home}
    ).start(timeout=90)
    try:
        predictor = launcher.start_predictor(d, tag, monitor.url, monitor.token, "predictor",
                                             extra_env=home)  # fmt: skip
        wait_registered(monitor, version)
        try:
            live = live.assign(rain=live["rain"].where(live.index != WET_DAY, wet))
            ids, wet_answer = [], None
            with httpx.Client(base_url=predictor.url, timeout=30) as client:
                for i, row in live.iterrows():
                    features = row[schema.feature_names].to_dict()
                    resp = client.post(
                        "/predict",
                        json={"records": [features]},
                        headers={"X-Modelguard-Event-Time": row["date"]},
                    )
                    assert resp.status_code == 200, resp.text
                    if i == WET_DAY:
                        wet_answer = resp
                    ids.append(resp.json()[0]["prediction_id"])
                bad = {**live.iloc[0][schema.feature_names].to_dict(), "rain": -0.5}
                refused = client.post("/predict", json={"records": [bad]})
            labels = [
                {"prediction_id": p, "label": int(y)}
                for p, y in zip(ids, live["rain_tomorrow"], strict=True)
            ]
            resp = httpx.post(f"{monitor.url}/v1/labels", json={"labels": labels},
                              headers=monitor.headers("labels"), timeout=60)  # fmt: skip
            assert resp.status_code == 202, resp.text
            assert wet_answer is not None
            yield Daily(d, monitor, predictor, version, schema_file, live, wet, refused, wet_answer)
        finally:
            predictor.stop()
    finally:
        monitor.stop()


@pytest.fixture(scope="module")
def chunks(daily: Daily) -> list[dict[str, Any]]:
    env = daily.cli_env()
    ok("known-good", "set", MODEL, daily.version, env=env)
    return wait_chunks(env, want=13)


def test_a_declared_limit_is_refused_and_a_value_past_the_expected_range_is_served(
    daily: Daily,
) -> None:
    assert daily.refused.status_code == 400
    assert "rain" in daily.refused.text and "limits" in daily.refused.text
    assert daily.wet_answer.status_code == 200


def test_30_day_chunks_numbered_from_0_show_realized_auc_with_its_sampling_error(
    daily: Daily, chunks: list[dict[str, Any]]
) -> None:
    assert [c["chunk_index"] for c in chunks] == list(range(13))
    assert [c["rows"] for c in chunks] == [30] * 12 + [5]
    starts = [pd.Timestamp(c["period_start"]) for c in chunks]
    first_live = pd.Timestamp(daily.live["date"].iloc[0])
    assert starts == [first_live + pd.Timedelta(days=30 * i) for i in range(13)]
    assert [c["partial"] for c in chunks] == [False] * 12 + [True]
    shown = [c for c in chunks[:12] if c["realized"].get("roc_auc") is not None]
    assert len(shown) >= 10  # every full month holds both classes here
    for c in shown:
        error = c["realized_sampling_error"]["roc_auc"]
        assert error is not None and 0.02 < error < 0.3  # 30 rows: a wide error
    status = json.loads(ok("status", "--json", env=daily.cli_env()))
    assert daily.version in json.dumps(status.get("known_good"))


def test_the_value_past_the_expected_range_is_counted_and_reported(
    daily: Daily, chunks: list[dict[str, Any]]
) -> None:
    newest = chunks[-1]
    assert newest["out_of_range_ratio"]["rain"] == pytest.approx(1 / 5)
    assert all(not c["out_of_range_ratio"].get("season") for c in chunks)
    gauge = metric_samples(daily.monitor, "modelguard_data_out_of_range_ratio")
    assert gauge[("rain", daily.version)] > 0
    report = daily.workdir / "report.html"
    ok("report", MODEL, "-o", report, env=daily.cli_env())
    page = report.read_text()
    table = page[page.index("Values outside the expected range") :]
    table = table[: table.index("</table>")]
    assert "<td>rain</td>" in table and "20.0%" in table


def test_an_ignored_seasonal_feature_raises_no_drift_alert(
    daily: Daily, chunks: list[dict[str, Any]]
) -> None:
    season = [d for c in chunks for d in c["drift"] if d["feature"] == "season"]
    assert season and all(d["ignored"] for d in season)  # measured, never alerting
    assert all("season" not in c.get("drifted_features", []) for c in chunks)
    alerts = metric_samples(daily.monitor, "modelguard_feature_drift_alert")
    assert alerts  # other features' series exist
    assert not [k for k in alerts if k[0] == "season"]


def metric_samples(monitor: MonitorProcess, name: str) -> dict[tuple[str, str], float]:
    """The monitor's /metrics samples of `name` for this model: (feature, version) -> value."""
    text = httpx.get(f"{monitor.url}/metrics", timeout=30).text
    return {
        (s.labels["feature"], s.labels["version"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels.get("model") == MODEL
    }

"""Expected ranges are served and counted, declared limits refused: a real `bentoml serve`
shipping to a real monitor over HTTP (issue 20, item 1).

The weather model is retrained on a schema whose `temp` has an expected range (what the
training rows covered, as `modelguard schema infer` writes it) inside its declared limits
(-40..130 F). Records hotter than the expected range are answered 200 and the monitor's
`modelguard_data_out_of_range_ratio{feature="temp"}` and report show their share; a record
beyond the limit is a 400 naming `records[0].temp`.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bentos.training.data import Split, records
from contract.schema import ModelSchema, Range
from tests.support.monitor import RoleAuth, running_monitor
from tests.support.predictor import running_predictor

CHUNK = 100


def with_expected_temp(schema: ModelSchema, train: pd.DataFrame) -> ModelSchema:
    low, high = float(train["temp"].min()), float(train["temp"].max())
    features = [
        f.model_copy(update={"expected": Range(min=low, max=high)}) if f.name == "temp" else f
        for f in schema.features
    ]
    return ModelSchema.model_validate(schema.model_dump() | {"features": features})


@pytest.fixture(scope="module")
def ranged(split: Split, schema: ModelSchema, bentoml_home: Path) -> tuple[str, ModelSchema]:
    from bentos.training.train import RELEASES, save_to_store, train_release

    ranged = with_expected_temp(schema, split.train)
    # Its own release name: the same booster under the session's `good` tag with another
    # schema would be refused by the model store (and break whichever test saved second).
    release = replace(RELEASES["good"], name="good-ranged")
    return save_to_store(train_release(release, split, ranged), ranged), ranged


def post(url: str, recs: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        url + "/predict",
        content=json.dumps({"records": recs}).encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


def test_beyond_expected_is_served_and_counted_beyond_a_limit_is_refused(
    tmp_path: Path, split: Split, bentoml_home: Path, ranged: tuple[str, ModelSchema]
) -> None:
    tag, schema = ranged
    assert schema.feature("temp").limits == Range(min=-40, max=130)
    expected = schema.feature("temp").expected
    assert expected is not None and expected.max is not None
    high = expected.max
    rows = split.replay[schema.valid_rows(split.replay)].iloc[: 2 * CHUNK].copy()
    hot = rows.index[CHUNK : CHUNK + 30]  # 30% of the second chunk, hotter than ever seen
    rows.loc[hot, "temp"] = high + 10.0
    recs = records(rows, schema)
    # The contract's own count; the replay (later than training) may add a natural one.
    want = [schema.out_of_range(rows.iloc[i : i + CHUNK])["temp"] for i in (0, CHUNK)]
    assert want[0] < 0.05 and want[1] >= 0.3
    with running_monitor(
        tmp_path / "monitor", env={"MONITOR_CHUNK_SIZE": str(CHUNK)}, analysis_interval_seconds=1
    ) as mon:
        env = {
            "BENTOML_HOME": str(bentoml_home),
            "PREDICTOR_MODEL_TAG": tag,
            "PREDICTOR_MONITOR_URL": mon.url,
            "PREDICTOR_MONITOR_TOKEN": mon.token,
            "PREDICTOR_SPOOL_DIR": str(tmp_path / "spool"),
            "PREDICTOR_SHIP_FLUSH_SECONDS": "0.2",
        }
        with running_predictor(env, tmp_path / "serve.log") as proc:
            refused = post(proc.url, [{**recs[0], "temp": -45.0}])
            assert refused.status_code == 400, refused.text
            (err,) = refused.json()["errors"]
            assert err["loc"] == "records[0].temp" and "declared limits [-40, 130]" in err["msg"]
            for start in range(0, len(recs), 50):
                served = post(proc.url, recs[start : start + 50])
                assert served.status_code == 200, served.text
            with httpx.Client(base_url=mon.url, timeout=60, auth=RoleAuth(mon)) as client:
                version = tag.split(":")[1]
                deadline = time.monotonic() + 180
                chunks: list[dict[str, Any]] = []
                while time.monotonic() < deadline and len(chunks) < 2:
                    chunks = client.get("/v1/models/rain_forecast/chunks").json()
                    time.sleep(1)
                assert len(chunks) == 2, mon.log()
                shares = [c["out_of_range_ratio"]["temp"] for c in chunks]
                assert shares == pytest.approx(want)  # the refused record is not there
                exposition = client.get("/metrics").text
                report = client.get("/reports/rain_forecast").text
    gauge = [
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == "modelguard_data_out_of_range_ratio"
        and s.labels["version"] == version
        and s.labels["feature"] == "temp"
    ]
    assert gauge == [pytest.approx(want[1])]  # the newest chunk's share
    table = report[report.index("Values outside the expected range") :]
    assert f"<td>temp</td><td>{want[0]:.1%}</td><td>{want[1]:.1%}</td>" in table

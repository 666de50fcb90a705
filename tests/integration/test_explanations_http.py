"""Per-prediction explanations (`?explain=k`) over real HTTP against a real `bentoml serve`.

The additivity the docs state -- base value + every contribution = the model's margin -- is
checked against the booster from the store (`output_margin=True`) and against the logit of
the served probability, on random valid replay records (nulls included).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bentoml
import httpx
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from bentos.training.data import Split, records
from contract.errors import ErrorBody
from contract.schema import ModelSchema
from replay.launcher import Process
from tests.support.predictor import running_predictor

PLAIN_KEYS = {"prediction_id", "probability", "predicted_class", "model_version"}


@pytest.fixture(scope="module")
def predictor(
    trained_models: dict[str, str], bentoml_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Process]:
    env = {"BENTOML_HOME": str(bentoml_home), "PREDICTOR_MODEL_TAG": trained_models["good"]}
    log = tmp_path_factory.mktemp("predictor-explain") / "serve.log"
    with running_predictor(env, log) as proc:
        yield proc


@pytest.fixture(scope="module")
def rows(split: Split, schema: ModelSchema) -> pd.DataFrame:
    valid = split.replay[schema.valid_rows(split.replay)]
    picked = valid.sample(n=60, random_state=13)
    assert picked["wind_gust"].isna().any() and picked["wind_gust"].notna().any()
    return picked


@pytest.fixture(scope="module")
def margins(rows: pd.DataFrame, schema: ModelSchema, trained_models: dict[str, str]) -> np.ndarray:
    booster = xgb.Booster()
    booster.load_model(bentoml.models.get(trained_models["good"]).path_of("saved_model.ubj"))
    dm = xgb.DMatrix(schema.to_matrix(rows), missing=np.nan)
    return np.asarray(booster.predict(dm, output_margin=True, validate_features=False))


def post(url: str, body: Any, path: str = "/predict", query: str = "") -> httpx.Response:
    return httpx.post(
        f"{url}{path}{query}",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


def _total(explanation: dict[str, Any]) -> float:
    values = [c["value"] for c in explanation["contributions"]]
    return float(explanation["base_value"] + sum(values) + explanation["others"])


@pytest.mark.parametrize("path", ["/predict", "/predict_batch"])
def test_base_plus_all_contributions_is_the_margin(
    predictor: Process,
    rows: pd.DataFrame,
    schema: ModelSchema,
    margins: np.ndarray,
    path: str,
) -> None:
    n = len(schema.feature_names)
    resp = post(predictor.url, {"records": records(rows, schema)}, path, f"?explain={n}")
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert len(out) == len(rows)
    for pred, margin in zip(out, margins, strict=True):
        exp = pred["explanation"]
        assert sorted(c["feature"] for c in exp["contributions"]) == sorted(schema.feature_names)
        assert exp["others"] == pytest.approx(0.0, abs=1e-9)  # k = every feature
        total = exp["base_value"] + sum(c["value"] for c in exp["contributions"])
        assert total == pytest.approx(float(margin), abs=1e-4)
        p = pred["probability"]
        if 1e-3 < p < 1 - 1e-3:  # float32 probabilities: the logit is exact enough here
            assert total == pytest.approx(math.log(p / (1 - p)), abs=1e-4)
        magnitudes = [abs(c["value"]) for c in exp["contributions"]]
        assert magnitudes == sorted(magnitudes, reverse=True)
    bases = {round(p["explanation"]["base_value"], 9) for p in out}
    assert len(bases) == 1  # the base value is the model's, not the record's


def test_top_k_is_the_k_largest_and_the_rest_sums_into_others(
    predictor: Process, rows: pd.DataFrame, schema: ModelSchema, margins: np.ndarray
) -> None:
    n = len(schema.feature_names)
    body = {"records": records(rows, schema)}
    full = post(predictor.url, body, query=f"?explain={n}").json()
    top3 = post(predictor.url, body, query="?explain=3").json()
    default = post(predictor.url, body, query="?explain=true").json()
    for f, t, d, margin in zip(full, top3, default, margins, strict=True):
        assert t["probability"] == f["probability"]
        assert t["explanation"]["contributions"] == f["explanation"]["contributions"][:3]
        assert len(d["explanation"]["contributions"]) == 5
        for part in (t, d):
            assert _total(part["explanation"]) == pytest.approx(float(margin), abs=1e-4)


def test_explain_works_on_json_lines(
    predictor: Process, rows: pd.DataFrame, schema: ModelSchema, margins: np.ndarray
) -> None:
    lines = "\n".join(json.dumps(r) for r in records(rows.head(10), schema)).encode()
    resp = httpx.post(
        predictor.url + "/predict_batch?explain=2",
        content=lines,
        headers={"Content-Type": "application/x-ndjson"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    for pred, margin in zip(resp.json(), margins[:10], strict=True):
        assert len(pred["explanation"]["contributions"]) == 2
        assert _total(pred["explanation"]) == pytest.approx(float(margin), abs=1e-4)


@pytest.mark.parametrize("query", ["", "?explain=false", "?other=1"])
def test_explain_off_answers_exactly_as_before(
    predictor: Process, rows: pd.DataFrame, schema: ModelSchema, query: str
) -> None:
    body = {"records": records(rows.head(5), schema)}
    for path in ("/predict", "/predict_batch"):
        resp = post(predictor.url, body, path, query)
        assert resp.status_code == 200, resp.text
        out = resp.json()
        assert [set(p) for p in out] == [PLAIN_KEYS] * 5
        on = post(predictor.url, body, path, "?explain=1").json()
        assert [p["probability"] for p in on] == [p["probability"] for p in out]
        assert [p["predicted_class"] for p in on] == [p["predicted_class"] for p in out]
        assert [set(p) for p in on] == [PLAIN_KEYS | {"explanation"}] * 5


@pytest.mark.parametrize("value", ["0", "12", "-1", "3.5", "abc", "", "TRUEISH"])
def test_out_of_bounds_k_is_a_400_naming_explain(
    predictor: Process, rows: pd.DataFrame, schema: ModelSchema, value: str
) -> None:
    assert len(schema.feature_names) == 11  # so 12 is one past the bound
    body = {"records": records(rows.head(1), schema)}
    for path in ("/predict", "/predict_batch"):
        resp = post(predictor.url, body, path, f"?explain={value}")
        assert resp.status_code == 400, (value, resp.text)
        err = ErrorBody.model_validate_json(resp.content, strict=True)
        assert [e.loc for e in err.errors] == ["explain"]
        assert err.error.startswith("explain: ") and "1 to 11" in err.error


def test_openapi_documents_the_parameter_and_the_explanation(predictor: Process) -> None:
    doc = httpx.get(predictor.url + "/docs.json", timeout=10).json()
    schemas = doc["components"]["schemas"]
    assert schemas["Prediction"]["properties"]["explanation"]["$ref"].endswith("/Explanation")
    assert set(schemas["Explanation"]["properties"]) == {"base_value", "contributions", "others"}
    assert set(schemas["Contribution"]["properties"]) == {"feature", "value"}
    assert "explanation" not in schemas["Prediction"]["required"]
    for route in ("/predict", "/predict_batch"):
        (param,) = doc["paths"][route]["post"]["parameters"]
        assert param["name"] == "explain" and param["in"] == "query"
        assert {"type": "integer", "minimum": 1, "maximum": 11} in param["schema"]["anyOf"]

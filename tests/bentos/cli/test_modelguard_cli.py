"""`modelguard schema infer | package | validate` on small generated data: what each accepts,
and each refusal (exit code 2, a message naming the file, column or field)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml
from typer.testing import CliRunner

from bentos.cli.app import app
from bentos.cli.schema_file import load_schema
from contract import metadata as md_keys

runner = CliRunner()
ROWS = 1200


def frame(seed: int = 0, rows: int = ROWS) -> pd.DataFrame:
    """A label that depends on every feature, a time column, one gap in `speed`."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "blue", "green"], rows)
    speed = rng.normal(50, 10, rows)
    count = rng.integers(0, 20, rows)
    logit = (speed - 50) / 5 + (color == "red") * 1.5 - count / 10
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    data = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=rows, freq="h").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "color": color,
            "speed": speed,
            "count": count,
            "outcome": label,
        }
    )
    data.loc[3, "speed"] = np.nan
    return data


def invoke(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def infer(tmp_path: Path, data: pd.DataFrame, *extra: str) -> tuple[int, str, Path]:
    csv, out = tmp_path / "data.csv", tmp_path / "schema.yaml"
    data.to_csv(csv, index=False)
    code, output = invoke(
        "schema", "infer", csv, "--label", "outcome", "--time", "when", "-o", out, *extra
    )
    return code, output, out


def train(schema_path: Path, data: pd.DataFrame, out: Path, **params: object) -> Path:
    schema = load_schema(schema_path)
    dtrain = xgb.DMatrix(schema.encode(data), label=data["outcome"])
    base = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 1}
    booster = xgb.train({**base, **params}, dtrain, num_boost_round=30)
    booster.save_model(out)
    return out


@pytest.fixture
def packaged(tmp_path: Path, bentoml_home: Path) -> dict[str, Path]:
    """A schema, a booster trained on one half, the other half as the reference."""
    data = frame()
    code, output, schema = infer(tmp_path, data.iloc[:600], "--segment", "color")
    assert code == 0, output
    reference = tmp_path / "reference.csv"
    data.iloc[600:].to_csv(reference, index=False)
    booster = train(schema, data.iloc[:600].dropna(), tmp_path / "model.ubj")
    return {"schema": schema, "reference": reference, "booster": booster, "dir": tmp_path}


def package(p: dict[str, Path], *extra: object, reference: Path | None = None) -> tuple[int, str]:
    return invoke(
        "package", p["booster"], "--schema", p["schema"], "--reference",
        reference or p["reference"], "--name", "toy_model", *extra,
    )  # fmt: skip


# ---------------------------------------------------------------- schema infer


def test_infer_writes_an_editable_schema_with_the_documented_rules(tmp_path: Path) -> None:
    code, output, out = infer(tmp_path, frame(), "--segment", "color")
    assert code == 0, output
    text = out.read_text()
    assert text.startswith("# modelguard feature schema") and "# observed" in text
    schema = load_schema(out)
    assert schema.feature_names == ["color", "speed", "count"]
    color, speed, count = schema.features
    assert color.categories == ["blue", "green", "red"]  # sorted text: the codes' order
    assert speed.dtype == "float" and speed.nullable and not count.nullable
    assert count.dtype == "int" and count.expected is not None
    assert (count.expected.min, count.expected.max) == (0, 21)  # 0..19 widened by 10%
    observed = frame()["speed"]
    span = observed.max() - observed.min()
    assert speed.expected is not None
    assert speed.expected.min is not None and speed.expected.max is not None
    assert speed.expected.min <= observed.min() - 0.1 * span < observed.min()
    assert observed.max() < observed.max() + 0.1 * span <= speed.expected.max
    # Expectations only: infer declares no limits (nothing refused) and refuses new categories.
    assert all(f.limits is None for f in schema.features) and color.unknown == "refuse"
    assert schema.schema_version == 2 and "limits: {min: 0}" in text  # the header says how
    assert schema.segment == "color" and schema.label.name == "outcome"
    assert yaml.safe_load(text)["time_column"] == "when"


REFUSALS = {
    "non-binary-label": (
        lambda d: d.assign(outcome=d["outcome"] * 2 + (d.index % 3 == 0)),
        "label column 'outcome' is not binary 0/1",
    ),
    "one-class-label": (
        lambda d: d.assign(outcome=1),
        "label column 'outcome' only takes the value 1",
    ),
    "missing-label": (
        lambda d: d.assign(outcome=d["outcome"].where(d.index > 5)),
        "label column 'outcome' has 6 missing values",
    ),
    "unparseable-time": (
        lambda d: d.assign(when=d["when"].where(d.index != 7, "not a time")),
        "time column 'when' does not parse as a timestamp in 1 rows, e.g. row 7",
    ),
    "numeric-time": (
        lambda d: d.assign(when=np.arange(len(d))),
        "time column 'when' holds numbers",
    ),
    "constant-feature": (
        lambda d: d.assign(count=4),
        "feature column 'count' is constant",
    ),
    "all-missing-feature": (
        lambda d: d.assign(speed=np.nan),
        "feature column 'speed' is missing in every row",
    ),
    "identifier-column": (
        lambda d: d.assign(color=[f"id{i}" for i in d.index]),
        "feature column 'color' has 1200 distinct values",
    ),
    "bad-feature-name": (
        lambda d: d.rename(columns={"speed": "speed (km/h)"}),
        "feature column 'speed (km/h)' cannot be a feature",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_infer_refuses_naming_the_column(tmp_path: Path, case: str) -> None:
    change, names = REFUSALS[case]
    code, output, out = infer(tmp_path, change(frame()))
    assert code == 2, output
    assert names in output and "data.csv" in output
    assert not out.exists()


def test_infer_refuses_a_missing_column_a_numeric_segment_and_a_bad_file(tmp_path: Path) -> None:
    code, output, _ = infer(tmp_path, frame(), "--segment", "nope")
    assert code == 2 and "no column 'nope' (--segment)" in output
    code, output, _ = infer(tmp_path, frame(), "--segment", "count")
    assert code == 2 and "segment column 'count' is not categorical" in output
    code, output = invoke("schema", "infer", tmp_path / "x.txt", "--label", "a", "--time", "b")
    assert code == 2 and "x.txt: no such file" in output
    (tmp_path / "x.txt").write_text("a,b\n")
    code, output = invoke("schema", "infer", tmp_path / "x.txt", "--label", "a", "--time", "b")
    assert code == 2 and "x.txt: unknown format '.txt'" in output


def test_infer_reads_parquet(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    frame().to_parquet(path)
    code, output = invoke("schema", "infer", path, "--label", "outcome", "--time", "when")
    assert code == 0, output
    assert "name: speed" in output


# ---------------------------------------------------------------- package and validate


def test_package_saves_the_contract_and_validate_accepts_it(packaged: dict[str, Path]) -> None:
    import bentoml

    code, output = package(packaged, "--release", "first")
    assert code == 0, output
    tag = output.strip().splitlines()[-1]
    assert tag.startswith("toy_model:first-")
    assert "auto: best F1 on the reference" in output
    model = bentoml.models.get(tag)
    md: dict[str, Any] = dict(model.info.metadata)
    assert set(md_keys.REQUIRED) <= set(md)
    assert md[md_keys.REFERENCE_ROWS] == ROWS - 600
    assert md[md_keys.METRICS]["reference"]["roc_auc"] > 0.7
    rows = json.loads(Path(model.path_of(md_keys.DEFAULT_REFERENCE_FILE)).read_text())
    assert {"when", "color", "speed", "count", "outcome", "probability"} <= set(rows[0])
    code, output = invoke("validate", tag)
    assert code == 0 and "meets the contract" in output
    again, output = package(packaged, "--release", "first")
    assert again == 0 and output.strip().splitlines()[-1] == tag  # same booster, same version


def test_package_takes_a_given_threshold(packaged: dict[str, Path]) -> None:
    import bentoml

    code, output = package(packaged, "--threshold", "0.3", "--release", "fixed")
    assert code == 0, output
    md: dict[str, Any] = dict(bentoml.models.get(output.strip().splitlines()[-1]).info.metadata)
    assert json.loads(md[md_keys.SCHEMA])["threshold"] == 0.3


def test_package_refuses_a_booster_that_does_not_fit_the_schema(
    packaged: dict[str, Path],
) -> None:
    d = packaged["dir"]
    data = frame().iloc[:600]
    x = load_schema(packaged["schema"]).encode(data)
    narrow = xgb.train(
        {"objective": "binary:logistic"}, xgb.DMatrix(x[["color", "speed"]], label=data["outcome"])
    )
    narrow.save_model(d / "narrow.ubj")
    code, output = package({**packaged, "booster": d / "narrow.ubj"})
    assert code == 2 and "takes 2 features" in output and "field `features` lists 3" in output
    train(packaged["schema"], data, d / "reg.json", objective="reg:squarederror")
    code, output = package({**packaged, "booster": d / "reg.json"})
    assert code == 2 and "objective 'reg:squarederror'" in output
    (d / "junk.ubj").write_bytes(b"not a model")
    code, output = package({**packaged, "booster": d / "junk.ubj"})
    assert code == 2 and "junk.ubj: not an XGBoost booster file" in output
    code, output = package({**packaged, "booster": d / "model.pkl"})
    assert code == 2 and "model.pkl: no such file" in output


def test_package_refuses_reference_rows_outside_the_schema(packaged: dict[str, Path]) -> None:
    ref = pd.read_csv(packaged["reference"])
    ref.loc[10, "count"] = 999  # past the inferred expectation: served, so not refused
    ref.loc[11, "color"] = "purple"
    ref.loc[12, "speed"] = -1.0  # past the limit declared below
    bad = packaged["dir"] / "outside.csv"
    ref.to_csv(bad, index=False)
    text = packaged["schema"].read_text()
    packaged["schema"].write_text(
        text.replace("name: speed\n", "name: speed\n    limits: {min: 0}\n", 1)
    )
    code, output = package(packaged, reference=bad)
    assert code == 2, output
    assert "outside.csv: rows outside the schema" in output
    assert "column 'speed': 1 rows (e.g. row 12: -1.0; limits [0, inf]" in output
    assert "column 'color'" in output and "column 'count'" not in output


def test_package_refuses_too_few_positives_stating_the_bound(packaged: dict[str, Path]) -> None:
    ref = pd.read_csv(packaged["reference"])
    ref["outcome"] = 0
    ref.loc[:2, "outcome"] = 1
    few = packaged["dir"] / "few.csv"
    ref.to_csv(few, index=False)
    code, output = package(packaged, reference=few)
    assert code == 2, output
    assert "label column 'outcome' has 3 positives" in output
    assert "at least 50 of each" in output and "standard error" in output


def test_package_refuses_a_reference_auc_near_chance(packaged: dict[str, Path]) -> None:
    ref = pd.read_csv(packaged["reference"])
    ref["outcome"] = np.random.default_rng(5).permutation(ref["outcome"].to_numpy())
    shuffled = packaged["dir"] / "shuffled.csv"
    ref.to_csv(shuffled, index=False)
    code, output = package(packaged, reference=shuffled)
    assert code == 2, output
    assert "shuffled.csv: the model's ROC AUC on the reference is" in output
    assert "below 0.55" in output


def test_package_refuses_a_bad_threshold_name_and_schema_field(packaged: dict[str, Path]) -> None:
    code, output = package(packaged, "--threshold", "1.5")
    assert code == 2 and "--threshold '1.5'" in output
    code, output = invoke(
        "package", packaged["booster"], "--schema", packaged["schema"], "--reference",
        packaged["reference"], "--name", "Bad Name",
    )  # fmt: skip
    assert code == 2 and "--name 'Bad Name'" in output
    broken = packaged["dir"] / "broken.yaml"
    raw = yaml.safe_load(packaged["schema"].read_text())
    raw["features"][1]["dtype"] = "decimal"
    broken.write_text(yaml.safe_dump(raw))
    code, output = package({**packaged, "schema": broken})
    assert code == 2 and "broken.yaml: field features.1.dtype" in output


def test_validate_names_what_is_missing_or_wrong(packaged: dict[str, Path]) -> None:
    import bentoml

    code, output = invoke("validate", "toy_model:nope")
    assert code == 2 and "toy_model:nope: no such model" in output

    tags = {}
    for release in ("noref", "tampered", "nokey"):
        code, output = package(packaged, "--release", release)
        assert code == 0, output
        tags[release] = output.strip().splitlines()[-1]

    model = bentoml.models.get(tags["noref"])
    Path(model.path_of(md_keys.DEFAULT_REFERENCE_FILE)).unlink()
    code, output = invoke("validate", tags["noref"])
    assert code == 2 and "reference file `reference.json`" in output and "missing" in output

    model = bentoml.models.get(tags["tampered"])
    ref_path = Path(model.path_of(md_keys.DEFAULT_REFERENCE_FILE))
    rows = json.loads(ref_path.read_text())
    rows[0]["probability"] = 1 - rows[0]["probability"]
    ref_path.write_text(json.dumps(rows))
    code, output = invoke("validate", tags["tampered"])
    assert code == 2 and "column `probability` differs" in output

    model = bentoml.models.get(tags["nokey"])
    info = Path(model.path) / "model.yaml"
    raw = yaml.safe_load(info.read_text())
    del raw["metadata"][md_keys.FEATURE_IMPORTANCE]
    info.write_text(yaml.safe_dump(raw))
    code, output = invoke("validate", tags["nokey"])
    assert code == 2 and "metadata `feature_importance` is missing" in output

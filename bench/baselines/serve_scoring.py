"""The scoring work every benchmarked server does, identical for all of them.

The benchmark compares *servers*, so the stock BentoML service and the bare Starlette app
call exactly these functions: validate the records with the schema's pydantic model, build
the float32 matrix the booster expects, `inplace_predict`, and shape the contract's
response. Building the matrix with numpy instead of `ModelSchema.to_matrix` (pandas) keeps
the per-request cost of the model itself small, so what differs between servers is the
server. `matrix()` gives the same array as `to_matrix` (asserted in the unit test).
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
import yaml

from contract.schema import ModelSchema

DEFAULT_TAG = "rain_forecast:latest"


@dataclass(frozen=True)
class LoadedModel:
    """A booster with the schema and version it was saved with."""

    booster: xgb.Booster
    schema: ModelSchema
    version: str
    path: Path


def model_dir(tag: str | None = None, home: str | None = None) -> Path:
    """The store folder of a model tag, resolved without importing BentoML.

    `name:latest` follows the store's `latest` file, as `bentoml.models.get` does.
    """
    tag = tag or os.environ.get("PREDICTOR_MODEL_TAG", DEFAULT_TAG)
    home = home or os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml"))
    name, _, version = tag.partition(":")
    base = Path(home) / "models" / name
    if version in ("", "latest"):
        latest = base / "latest"
        version = latest.read_text().strip() if latest.exists() else "latest"
    return base / version


def load(tag: str | None = None, home: str | None = None) -> LoadedModel:
    """Load the booster (UBJSON, no pickle) and its schema from the model store folder."""
    folder = model_dir(tag, home)
    if not (folder / "saved_model.ubj").exists():
        raise SystemExit(
            f"no model {tag or DEFAULT_TAG} in {folder.parent}: run `make train` first"
        )
    info = yaml.safe_load((folder / "model.yaml").read_text())
    schema = ModelSchema.model_validate_json(info["metadata"]["schema"])
    booster = xgb.Booster()
    booster.load_model(str(folder / "saved_model.ubj"))
    booster.set_param({"nthread": 1})
    return LoadedModel(booster=booster, schema=schema, version=str(info["version"]), path=folder)


def matrix(records: list[dict[str, Any]], schema: ModelSchema) -> np.ndarray:
    """Records -> float32 matrix in schema order; categories as index, None as NaN."""
    out = np.empty((len(records), len(schema.features)), dtype=np.float32)
    for j, feat in enumerate(schema.features):
        if feat.dtype == "category":
            codes = {c: float(i) for i, c in enumerate(feat.categories or [])}
            col = [codes.get(r[feat.name], math.nan) for r in records]
        else:
            col = [math.nan if r[feat.name] is None else r[feat.name] for r in records]
        out[:, j] = col
    return out


def predict(model: LoadedModel, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The contract's response rows for already validated records."""
    if not records:
        return []
    proba = model.booster.inplace_predict(matrix(records, model.schema))
    threshold = model.schema.threshold
    return [
        {
            "prediction_id": uuid.uuid4().hex,
            "probability": float(p),
            "predicted_class": int(p >= threshold),
            "model_version": model.version,
        }
        for p in proba
    ]

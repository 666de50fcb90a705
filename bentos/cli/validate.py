"""`modelguard validate`: does a store model meet the contract the predictor and monitor rely on?

Checks what would otherwise fail only at serving or registration time: the metadata keys
(`contract.metadata.REQUIRED`), the schema, the booster against the schema, the reference
file (rows, columns, inside the schema, its scores equal to the booster's own), and finally
the registration the predictor would send (`bentos.packaging`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from pydantic import ValidationError

from bentos.cli.errors import BadInputError
from bentos.cli.package import check_booster, check_reference
from bentos.packaging import registration_from_bento_model
from contract import metadata as md_keys
from contract.schema import ModelSchema

SCORE_TOLERANCE = 1e-5  # float32 input, float32 output: re-scores agree far closer


def _field_errors(where: str, exc: ValidationError) -> list[str]:
    return [
        f"{where}: field {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
        for e in exc.errors()[:5]
    ]


def validate(tag: str) -> tuple[str, list[str]]:
    """The model's full tag and what is wrong with it (empty: it meets the contract)."""
    import bentoml

    try:
        model = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound as exc:
        raise BadInputError(f"{tag}: no such model in the BentoML store") from exc
    except (ValueError, bentoml.exceptions.BentoMLException) as exc:
        raise BadInputError(f"{tag}: not a model tag NAME[:VERSION]: {exc}") from exc
    md: dict[str, Any] = dict(model.info.metadata)
    problems = [f"metadata `{key}` is missing" for key in md_keys.REQUIRED if key not in md]
    schema = _schema(md, problems)
    if md.get(md_keys.LEARNER, md_keys.XGBOOST_LEARNER) != md_keys.XGBOOST_LEARNER:
        problems.append(
            f"metadata `{md_keys.LEARNER}` is {md[md_keys.LEARNER]!r}, "
            f"not {md_keys.XGBOOST_LEARNER!r}"
        )
    metrics = md.get(md_keys.METRICS, {})
    if not isinstance(metrics, dict) or "roc_auc" not in metrics.get("reference", {}):
        problems.append(f"metadata `{md_keys.METRICS}` has no reference.roc_auc (the gate's)")
    booster = _booster(model, schema, problems)
    if schema is not None:
        unknown = set(md.get(md_keys.FEATURE_IMPORTANCE, {})) - set(schema.feature_names)
        if unknown:
            problems.append(
                f"metadata `{md_keys.FEATURE_IMPORTANCE}` names unknown features {sorted(unknown)}"
            )
        _reference(model, md, schema, booster, problems)
    if not problems:
        try:
            registration_from_bento_model(model)
        except ValidationError as exc:
            problems.extend(_field_errors("registration", exc))
    return str(model.tag), problems


def _schema(md: dict[str, Any], problems: list[str]) -> ModelSchema | None:
    if md_keys.SCHEMA not in md:
        return None
    try:
        return ModelSchema.model_validate_json(str(md[md_keys.SCHEMA]))
    except ValidationError as exc:
        problems.extend(_field_errors(f"metadata `{md_keys.SCHEMA}`", exc))
        return None


def _booster(model: Any, schema: ModelSchema | None, problems: list[str]) -> xgb.Booster | None:
    path = Path(model.path_of(md_keys.BOOSTER_FILE))
    if not path.is_file():
        problems.append(f"booster file `{md_keys.BOOSTER_FILE}` is missing")
        return None
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError:
        problems.append(f"booster file `{md_keys.BOOSTER_FILE}` does not load as UBJSON")
        return None
    if schema is not None:
        try:
            check_booster(booster, schema, f"booster `{md_keys.BOOSTER_FILE}`")
        except BadInputError as exc:
            problems.append(str(exc))
    return booster


def _reference(
    model: Any,
    md: dict[str, Any],
    schema: ModelSchema,
    booster: xgb.Booster | None,
    problems: list[str],
) -> None:
    name = str(md.get(md_keys.REFERENCE_FILE, md_keys.DEFAULT_REFERENCE_FILE))
    path = Path(model.path_of(name))
    where = f"reference file `{name}`"
    if not path.is_file():
        problems.append(f"{where} (metadata `{md_keys.REFERENCE_FILE}`) is missing")
        return
    try:
        rows = json.loads(path.read_text())
        frame = pd.DataFrame.from_records(rows)
    except (ValueError, TypeError) as exc:
        problems.append(f"{where} is not a JSON list of rows: {exc}")
        return
    if md.get(md_keys.REFERENCE_ROWS) != len(frame):
        problems.append(
            f"metadata `{md_keys.REFERENCE_ROWS}` is {md.get(md_keys.REFERENCE_ROWS)} but "
            f"{where} has {len(frame)} rows"
        )
    try:
        check_reference(frame, schema, where)
    except BadInputError as exc:
        problems.append(str(exc))
        return
    if "probability" not in frame.columns:
        problems.append(f"{where} has no column `probability` (the model's own scores)")
        return
    if booster is not None:
        stored = frame["probability"].to_numpy(dtype=float)
        rescored = booster.inplace_predict(schema.to_matrix(frame)).astype(float)
        gap = float(np.max(np.abs(stored - rescored)))
        if not gap <= SCORE_TOLERANCE:
            problems.append(
                f"{where}: column `probability` differs from the booster's own scores by up to "
                f"{gap:.3g} (another booster, or rows encoded differently)"
            )

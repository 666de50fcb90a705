"""`modelguard package`: a booster, its schema and a labelled hold-out -> a BentoML store model.

The one path every model takes into the store, the shipped rain model included
(`bentos/training/train.py` trains, then calls `assess` and `save`): the same checks, the
same hold-out metrics, feature importance, reference scores and the same metadata keys
(`contract/metadata.py`), which `bentos/packaging.py` reads back as the registration.

Refused, because each would make the monitor meaningless (docs/your-model.md, "Refusals"):
a booster whose feature count or objective does not match the schema; a reference with
rows the predictor would refuse; fewer than `MIN_CLASS_ROWS` positives or negatives (the
hold-out ROC AUC's own sampling error is then above ~0.05, more than the 0.02 release gate);
a reference ROC AUC below `MIN_REFERENCE_AUC` (chance level: a wrong encoding or label).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from pydantic import ValidationError

from bentos.cli.errors import BadInputError
from bentos.cli.metrics import auc_standard_error, best_f1_threshold, binary_metrics
from bentos.cli.schema_file import check_label
from contract import metadata as md_keys
from contract.registration import NAME_PATTERN
from contract.schema import ModelSchema

MIN_CLASS_ROWS = 50
MIN_REFERENCE_AUC = 0.55
MIN_REFERENCE_ROWS = 100  # contract.registration.Registration.reference
OBJECTIVE = "binary:logistic"  # the predictor serves inplace_predict as a probability
AUTO_RULE = "auto: best F1 on the reference (hold-out) rows, 0.01 grid in [0.05, 0.94]"


@dataclass(frozen=True)
class Assessed:
    """Everything `save` writes besides the booster."""

    schema: ModelSchema  # with the decision threshold
    threshold_rule: str
    metrics: dict[str, dict[str, float]]  # "reference" = the shared hold-out
    importance: dict[str, float]  # feature -> share of total gain
    reference: pd.DataFrame  # [time], features, label, probability, predicted_class


def load_booster(path: Path) -> xgb.Booster:
    """An XGBoost booster from JSON or UBJSON (never pickle)."""
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    if path.suffix.lower() not in {".json", ".ubj"}:
        raise BadInputError(
            f"{path}: a booster file must be .json or .ubj (booster.save_model('model.ubj'))"
        )
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise BadInputError(f"{path}: not an XGBoost booster file: {reason}") from exc
    return booster


def check_booster(booster: xgb.Booster, schema: ModelSchema, source: str) -> None:
    """The booster scores what the schema describes: same feature count and order, binary."""
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    if objective != OBJECTIVE:
        raise BadInputError(
            f"{source}: objective {objective!r}; the predictor needs a binary classifier "
            f"trained with objective {OBJECTIVE!r} (it serves probabilities)"
        )
    names = schema.feature_names
    if booster.num_features() != len(names):
        raise BadInputError(
            f"{source}: the booster takes {booster.num_features()} features, the schema's "
            f"field `features` lists {len(names)} ({', '.join(names)})"
        )
    trained = booster.feature_names
    if trained is not None and list(trained) != names:
        i = next(i for i, (a, b) in enumerate(zip(trained, names, strict=True)) if a != b)
        raise BadInputError(
            f"{source}: feature {i} is {trained[i]!r} in the booster but {names[i]!r} in the "
            "schema's field `features` (same names in the same order: train on schema.encode)"
        )


def check_reference(frame: pd.DataFrame, schema: ModelSchema, source: str) -> None:
    """Rows the predictor would accept, a 0/1 label, enough of them."""
    need = [*schema.feature_names, schema.label.name]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise BadInputError(f"{source}: columns missing: {', '.join(missing)}")
    check_label(frame[schema.label.name], schema.label.name, source)
    if len(frame) < MIN_REFERENCE_ROWS:
        raise BadInputError(
            f"{source}: {len(frame)} rows; a reference needs at least {MIN_REFERENCE_ROWS}"
        )
    problems = []
    for feat in schema.features:
        alone = ModelSchema(features=[feat], label=schema.label)
        bad = ~alone.valid_rows(frame)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            value = frame[feat.name].iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            problems.append(
                f"column {feat.name!r}: {int(bad.sum())} rows (e.g. row {row}: {value!r}; "
                f"{_allowed(feat)})"
            )
    if problems:
        raise BadInputError(
            f"{source}: rows outside the schema, which the predictor would refuse: "
            + "; ".join(problems)
        )


def _allowed(feat: Any) -> str:
    nulls = "null allowed" if feat.nullable else "no nulls"
    if feat.dtype == "category":
        more = "..." if len(feat.categories) > 6 else ""
        return f"categories {feat.categories[:6]}{more}, {nulls}"
    limits = feat.limits.text() if feat.limits is not None else "none"
    return f"limits {limits}, {nulls}"


def assess(
    booster: xgb.Booster,
    schema: ModelSchema,
    reference: pd.DataFrame,
    *,
    threshold: float | None,
    threshold_rule: str = "given",
    time_column: str | None = None,
    windows: Mapping[str, pd.DataFrame] | None = None,
    source: str = "reference",
    min_auc: float = MIN_REFERENCE_AUC,
) -> Assessed:
    """Check the booster and the reference, score the reference, compute what `save` stores.

    `threshold` None = auto (best F1 on the reference). `windows` are further labelled
    windows whose metrics are stored beside the reference's (the shipped model's replay).
    """
    check_booster(booster, schema, "model")
    check_reference(reference, schema, source)
    label = schema.label.name
    y = reference[label].to_numpy().astype(int)
    scores = booster.inplace_predict(schema.to_matrix(reference))
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if min(positives, negatives) < MIN_CLASS_ROWS:
        both = binary_metrics(y, scores, 0.5)["roc_auc"] if positives and negatives else 0.5
        error = auc_standard_error(both if np.isfinite(both) else 0.5, positives, negatives)
        raise BadInputError(
            f"{source}: label column {label!r} has {positives} positives and {negatives} "
            f"negatives; at least {MIN_CLASS_ROWS} of each are needed (with these counts the "
            f"reference ROC AUC has a standard error of {error:.3f}, Hanley-McNeil; estimate "
            "bands would be meaningless)"
        )
    if threshold is None:
        threshold, threshold_rule = best_f1_threshold(y, scores), AUTO_RULE
    metrics = {"reference": binary_metrics(y, scores, threshold)}
    auc = metrics["reference"]["roc_auc"]
    if auc < min_auc:
        raise BadInputError(
            f"{source}: the model's ROC AUC on the reference is {auc:.3f}, below {min_auc} "
            "(near or below chance): a wrong category encoding or feature order (train on "
            "ModelSchema.encode), or the wrong label or positive class"
        )
    for name, frame in (windows or {}).items():
        metrics[name] = binary_metrics(
            frame[label].to_numpy(), booster.inplace_predict(schema.to_matrix(frame)), threshold
        )
    cols = [*([time_column] if time_column else []), *schema.feature_names, label]
    ref = reference[cols].copy()
    if time_column:
        stamps = pd.to_datetime(ref[time_column], utc=True, format="mixed")
        ref[time_column] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ref["probability"] = scores
    ref["predicted_class"] = (scores >= threshold).astype(int)
    return Assessed(
        schema=schema.model_copy(update={"threshold": threshold}),
        threshold_rule=threshold_rule,
        metrics=metrics,
        importance=gain_shares(booster, schema),
        reference=ref,
    )


def gain_shares(booster: xgb.Booster, schema: ModelSchema) -> dict[str, float]:
    """Each feature's share of the booster's total gain (0 for a feature it never splits on)."""
    names = schema.feature_names
    raw = booster.get_score(importance_type="total_gain")
    by_index = {f"f{i}": n for i, n in enumerate(names)}
    gain = {by_index.get(k, k): float(v) for k, v in raw.items() if isinstance(v, int | float)}
    total = sum(gain.values()) or 1.0
    return {n: round(gain.get(n, 0.0) / total, 6) for n in names}


def version_of(booster: xgb.Booster, release: str = "") -> str:
    """`<release>-<sha256(booster UBJSON)[:10]>`: the same booster is the same version."""
    digest = hashlib.sha256(bytes(booster.save_raw("ubj"))).hexdigest()[:10]
    return f"{release}-{digest}" if release else digest


def metadata(
    assessed: Assessed, *, release: str, description: str, provenance: Mapping[str, Any]
) -> dict[str, Any]:
    """The metadata contract (`contract.metadata`), plus provenance keys of the caller's."""
    return {
        # BentoML metadata refuses None, so the schema travels as a JSON string.
        md_keys.SCHEMA: assessed.schema.model_dump_json(),
        md_keys.RELEASE: release,
        md_keys.DESCRIPTION: description,
        md_keys.LEARNER: md_keys.XGBOOST_LEARNER,
        **provenance,
        md_keys.THRESHOLD_RULE: assessed.threshold_rule,
        md_keys.METRICS: assessed.metrics,
        md_keys.FEATURE_IMPORTANCE: assessed.importance,
        md_keys.REFERENCE_FILE: md_keys.DEFAULT_REFERENCE_FILE,
        md_keys.REFERENCE_ROWS: len(assessed.reference),
    }


def save(
    name: str,
    booster: xgb.Booster,
    assessed: Assessed,
    *,
    release: str = "",
    description: str = "",
    provenance: Mapping[str, Any] | None = None,
) -> str:
    """Booster (UBJSON, via bentoml.xgboost) + metadata; the reference rows beside it as JSON.

    Returns the tag. Saving the same booster again returns the stored tag when it was
    packaged the same way, and is refused when its schema or reference differ.
    """
    import re

    import bentoml

    if not re.match(NAME_PATTERN, name):
        raise BadInputError(f"--name {name!r}: lower-case letters, digits, '-', '.', '_' only")
    tag = f"{name}:{version_of(booster, release)}"
    md = metadata(assessed, release=release, description=description, provenance=provenance or {})
    try:
        existing = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        existing = None
    if existing is not None:
        old = existing.info.metadata
        same = (
            _same_schema(old.get(md_keys.SCHEMA), md[md_keys.SCHEMA])
            and old.get(md_keys.REFERENCE_ROWS) == md[md_keys.REFERENCE_ROWS]
        )
        if not same:
            raise BadInputError(
                f"{tag} is already in the store with a different schema, threshold or "
                "reference; pass --release to package this one under another version"
            )
        return str(existing.tag)
    bentoml.xgboost.save_model(
        tag,
        booster,
        metadata=md,
        labels={"release": release or "none", "learner": md_keys.XGBOOST_LEARNER},
    )
    # The object save_model returns points at its staging folder; the stored copy is here.
    model = bentoml.models.get(tag)
    rows = assessed.reference.astype(object).where(assessed.reference.notna(), None)
    records = rows.to_dict(orient="records")
    Path(model.path_of(md_keys.DEFAULT_REFERENCE_FILE)).write_text(
        json.dumps(records, default=_json_scalar)
    )
    return str(model.tag)


def _json_scalar(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _same_schema(stored: Any, new: str) -> bool:
    """Equal once both are read by today's contract: a model packaged before the schema's
    version 2 stored version-1 JSON, which reads into the same schema it would be packaged
    with now (so packaging it again is not a different model)."""
    if stored == new:
        return True
    try:
        return bool(
            ModelSchema.model_validate_json(str(stored)) == ModelSchema.model_validate_json(new)
        )
    except ValidationError:
        return False

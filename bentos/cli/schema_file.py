"""`modelguard schema infer`: a feature schema inferred from data, as an editable YAML file.

The rules, also in docs/your-model.md ("The schema file"):

- a column of whole numbers (an integer dtype, or floats that are all whole because pandas
  promoted a column with gaps) is `int`, any other number `float`, text is `category`;
- a number's `expected` range is the observed [min, max] widened by `MARGIN` (10%) of its
  span on each side, never below 0 when no observed value is negative; ints are rounded
  outward to whole numbers, floats to 4 significant digits. It is an expectation, not a
  filter: the predictor serves a value outside it and the monitor counts the share outside
  (`modelguard_data_out_of_range_ratio`). `limits` (refused values) are never inferred: only
  the user knows what is impossible (negative precipitation);
- categories are the distinct values as text, sorted (the order `pandas.Categorical` gives
  text); a value's code is its position in that list, which is what `ModelSchema.encode`
  trains on and what the predictor sends the model. Add new values only at the end (existing
  codes stay) and retrain. `unknown: refuse` is written (a new value is a 400); `missing`
  serves it as missing instead;
- a feature is nullable when any value is missing;
- the label must be 0/1 with both classes present and nothing missing; the time column must
  parse as timestamps in every row; a constant or all-missing feature is refused (it carries
  nothing), as is text with more than `MAX_CATEGORIES` distinct values (an ID, not a category).

The file is `contract.schema.ModelSchema` as YAML plus one key of its own, `time_column`,
which `modelguard package` uses to keep each reference row's time in the model's reference
set; the model's metadata carries the schema without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from bentos.cli.errors import BadInputError
from contract.schema import Feature, LabelDefinition, ModelSchema, Range

MARGIN = 0.1
MAX_CATEGORIES = 200
TIME_KEY = "time_column"


@dataclass(frozen=True)
class SchemaFile:
    """What a schema file holds: the model contract and the data's time column."""

    schema: ModelSchema
    time_column: str | None


@dataclass(frozen=True)
class Inferred:
    file: SchemaFile
    notes: dict[str, str]  # feature -> what was observed (the YAML comment above it)
    rows: int


def infer(
    frame: pd.DataFrame,
    *,
    label: str,
    time: str,
    segment: str | None = None,
    exclude: list[str] | None = None,
    source: str = "data",
) -> Inferred:
    """The schema of `frame`'s columns other than the label, the time and `exclude`."""
    exclude = exclude or []
    for option, col in [("--label", label), ("--time", time), ("--segment", segment)] + [
        ("--exclude", c) for c in exclude
    ]:
        if col is not None and col not in frame.columns:
            raise BadInputError(
                f"{source}: no column {col!r} ({option}); columns: {', '.join(map(str, frame))}"
            )
    if len(frame) == 0:
        raise BadInputError(f"{source}: no rows")
    check_label(frame[label], label, source)
    _check_time(frame[time], time, source)
    features: list[Feature] = []
    notes: dict[str, str] = {}
    for name in frame.columns:
        if name in {label, time, *exclude}:
            continue
        feature, note = _infer_feature(str(name), frame[name], source)
        features.append(feature)
        notes[feature.name] = note
    if not features:
        raise BadInputError(f"{source}: no feature columns left besides the label and the time")
    if segment is not None and next(f for f in features if f.name == segment).dtype != "category":
        raise BadInputError(f"{source}: segment column {segment!r} is not categorical (text)")
    schema = ModelSchema(
        features=features,
        label=LabelDefinition(name=label),
        segment=segment,
    )
    return Inferred(SchemaFile(schema, time), notes, len(frame))


def check_label(col: pd.Series, name: str, source: str) -> None:
    missing = int(col.isna().sum())
    if missing:
        raise BadInputError(
            f"{source}: label column {name!r} has {missing} missing values; drop unlabelled rows"
        )
    values = col.unique()
    numeric = pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col)
    if not numeric or not set(values.tolist()) <= {0, 1}:
        shown = ", ".join(repr(v) for v in sorted(values.tolist(), key=str)[:5])
        raise BadInputError(
            f"{source}: label column {name!r} is not binary 0/1 (values: {shown}); "
            "map the positive class to 1 and the other to 0"
        )
    if len(values) < 2:
        raise BadInputError(
            f"{source}: label column {name!r} only takes the value {values.tolist()[0]!r}; "
            "a binary label needs both 0 and 1"
        )


def _check_time(col: pd.Series, name: str, source: str) -> None:
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise BadInputError(
            f"{source}: time column {name!r} holds numbers; write times as ISO-8601 text"
        )
    parsed = pd.to_datetime(col, utc=True, errors="coerce", format="mixed")
    bad = parsed.isna()
    if bad.any():
        first = bad.to_numpy().nonzero()[0][0]
        raise BadInputError(
            f"{source}: time column {name!r} does not parse as a timestamp in {int(bad.sum())} "
            f"rows, e.g. row {first}: {col.iloc[first]!r}"
        )


def _infer_feature(name: str, col: pd.Series, source: str) -> tuple[Feature, str]:
    rows = len(col)
    present = col.dropna()
    missing = rows - len(present)
    where = f"{source}: feature column {name!r}"
    if present.empty:
        raise BadInputError(f"{where} is missing in every row; drop it (--exclude {name})")
    nullable = missing > 0
    seen = f"{missing:,} of {rows:,} rows missing"
    if pd.api.types.is_bool_dtype(present):
        present = present.astype(int)
    if pd.api.types.is_numeric_dtype(present):
        values = present.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise BadInputError(f"{where} has infinite values; write them as missing or drop them")
        lo, hi = float(values.min()), float(values.max())
        if lo == hi:
            raise BadInputError(f"{where} is constant ({lo:g} in every row): it carries nothing")
        whole = pd.api.types.is_integer_dtype(present) or bool((values == np.round(values)).all())
        low, high = _widened(lo, hi, whole)
        dtype = "int" if whole else "float"
        note = f"observed {lo:g} .. {hi:g}; {seen}"
        expected = Range(min=low, max=high)
        feature = _feature(where, name=name, dtype=dtype, expected=expected, nullable=nullable)
        return feature, note
    if not (pd.api.types.is_object_dtype(present) or pd.api.types.is_string_dtype(present)):
        raise BadInputError(
            f"{where} has type {present.dtype}: only numbers and text are features; "
            f"--exclude {name} or convert it"
        )
    categories = sorted({str(v) for v in present.unique()})
    if len(categories) == 1:
        only = categories[0]
        raise BadInputError(f"{where} is constant ({only!r} in every row): it carries nothing")
    if len(categories) > MAX_CATEGORIES:
        raise BadInputError(
            f"{where} has {len(categories)} distinct values (more than {MAX_CATEGORIES}): an "
            f"identifier or free text, not a category; --exclude {name} or group its values"
        )
    note = f"{len(categories)} categories (code = position in this sorted list); {seen}"
    feature = _feature(where, name=name, dtype="category", categories=categories, nullable=nullable)
    return feature, note


def _feature(where: str, **fields: Any) -> Feature:
    try:
        return Feature(**fields)
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]) for e in exc.errors())
        hint = "names: letters, digits and _"
        raise BadInputError(f"{where} cannot be a feature: {reason} ({hint})") from exc


def _widened(lo: float, hi: float, whole: bool) -> tuple[float, float]:
    margin = MARGIN * (hi - lo)
    low, high = lo - margin, hi + margin
    if lo >= 0:
        low = max(0.0, low)
    if whole:
        return float(math.floor(low)), float(math.ceil(high))
    return _round_sig(low, down=True), _round_sig(high, down=False)


def _round_sig(x: float, *, down: bool, digits: int = 4) -> float:
    if x == 0:
        return 0.0
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(x))))
    rounded = (math.floor if down else math.ceil)(x * scale) / scale
    return float(rounded)


# ---------------------------------------------------------------- the YAML file

HEADER = """\
# modelguard feature schema, inferred by `modelguard schema infer` from {source} ({rows:,} rows).
# Edit it freely: `modelguard package` validates it (contract.schema.ModelSchema).
#
# - features are the model's input columns in model-input order (the booster's order);
# - int / float: `expected` = observed [min, max] widened by {margin:.0%} of its span on each
#   side (never below 0 when nothing observed is negative). The predictor SERVES a value
#   outside it; the monitor counts the share outside per feature and chunk and alerts on it.
#   Add `limits: {{min: 0}}` (either end optional) for values that are impossible, e.g.
#   negative precipitation: the predictor refuses those with a 400 naming the field;
# - category: code = position in `categories` (sorted text, as pandas.Categorical sorts);
#   train on ModelSchema.encode(frame) so the model sees these codes. Append new values at
#   the end only, then retrain. `unknown: refuse` answers a value outside `categories` with a
#   400; `unknown: missing` serves it as missing (NaN). The monitor counts it either way;
# - nullable: null (missing) is accepted and goes to the model as NaN;
# - threshold: the decision threshold; `modelguard package --threshold` sets it.
"""


def render(inferred: Inferred, source: str) -> str:
    """The commented YAML of an inferred schema."""
    s = inferred.file.schema
    lines = [HEADER.format(source=source, rows=inferred.rows, margin=MARGIN)]
    lines.append(f"schema_version: {s.schema_version}")
    lines.append(
        f"{TIME_KEY}: {_scalar(inferred.file.time_column)}  "
        "# not a feature: kept with each reference row by `modelguard package`"
    )
    lines.append("label:  # 0/1; 1 = the positive class")
    lines.append(_indent(yaml.safe_dump(s.label.model_dump(), sort_keys=False).rstrip(), "  "))
    lines.append(f"threshold: {s.threshold}")
    seg = _scalar(s.segment) if s.segment else "null"
    lines.append(f"segment: {seg}  # a category feature analysed as slices, or null")
    lines.append("features:")
    for feat in s.features:
        lines.append(f"  # {inferred.notes.get(feat.name, '')}")
        lines.append(_indent(_dump([_feature_body(feat)]), "  "))
    return "\n".join(lines) + "\n"


def _feature_body(feat: Feature) -> dict[str, Any]:
    """A feature as the file shows it: the keys that apply to its dtype, ints as ints."""
    body = feat.model_dump(exclude_defaults=False)
    if feat.dtype == "category":
        body.pop("expected")
        body.pop("limits")
        return body
    body.pop("categories")
    body.pop("unknown")
    if body["limits"] is None:
        body.pop("limits")
    for key in ("expected", "limits"):
        bounds = body.get(key)
        if feat.dtype == "int" and bounds:
            body[key] = {k: None if v is None else int(v) for k, v in bounds.items()}
    return body


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=None, width=96).rstrip()


def _scalar(value: Any) -> str:
    return _dump(value).removesuffix("\n...").strip()


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def load(path: Path) -> SchemaFile:
    """A schema file, validated; an error names the file and the field."""
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BadInputError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise BadInputError(f"{path}: expected a mapping with `features` and `label`")
    time_column = raw.pop(TIME_KEY, None)
    try:
        schema = ModelSchema.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise BadInputError(f"{path}: field {loc}: {first['msg']}") from exc
    return SchemaFile(schema, str(time_column) if time_column is not None else None)


def load_schema(path: str | Path) -> ModelSchema:
    """The model contract of a schema file: what training code encodes with."""
    return load(Path(path)).schema

"""The feature schema: the contract that travels in the model's metadata.

The predictor validates requests with it, the monitor reads columns, types, ranges, the
label and the segment column from it, and both turn records into the model's input matrix
with `to_matrix`, so a shadow re-score sees exactly what serving saw. Depends on pydantic,
numpy and pandas only: the monitor image imports it without BentoML.

Version 2 separates two kinds of range (docs/your-model.md "Expected ranges and limits"):

- `expected`: what the training data covered (`modelguard schema infer` writes it). The
  predictor serves a value outside it; the monitor counts the share outside per feature and
  chunk (`out_of_range`, `modelguard_data_out_of_range_ratio`).
- `limits`: impossible values the user declares (negative precipitation). The predictor
  refuses them with a 400 naming the field.

Type, category and nullability stay hard checks. A category's `unknown` says what a value
outside `categories` does: `refuse` (400, the default) or `missing` (served as missing;
counted by the monitor either way). A version-1 schema's `min`/`max` were hard limits and are
read as `limits` (`_upgrade_v1`): what a deployed predictor refused keeps being refused.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Literal[2] = 2
V1_RANGE_KEYS = ("min", "max")
V2_ONLY_KEYS = ("expected", "limits", "unknown")


class Range(BaseModel):
    """A closed interval; either end may be open (null)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self

    def outside(self, num: np.ndarray) -> np.ndarray:
        """True where a (finite) value lies outside the interval."""
        bad = np.zeros(num.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.min is not None:
                bad |= num < self.min
            if self.max is not None:
                bad |= num > self.max
        return bad

    def text(self) -> str:
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"[{lo}, {hi}]"


class Feature(BaseModel):
    """One input column. Numbers are finite unless `nullable` (then null means missing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    dtype: Literal["float", "int", "category"] = "float"
    expected: Range | None = Field(
        default=None,
        description="Range the training data covered: served outside it, counted by the monitor",
    )
    limits: Range | None = Field(
        default=None, description="Impossible values beyond it: the predictor refuses them (400)"
    )
    nullable: bool = False
    categories: list[str] | None = None
    unknown: Literal["refuse", "missing"] = Field(
        default="refuse",
        description="A category outside `categories`: refused (400) or served as missing",
    )
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _no_v1_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in V1_RANGE_KEYS):
            raise ValueError(
                "`min`/`max` are schema version 1 keys: in version 2 write "
                "`expected: {min, max}` (served, counted) or `limits: {min, max}` (refused)"
            )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.dtype == "category":
            if not self.categories:
                raise ValueError(f"feature {self.name!r}: a category needs `categories`")
            if self.expected is not None or self.limits is not None:
                raise ValueError(f"feature {self.name!r}: a category takes no expected/limits")
        else:
            if self.categories is not None:
                raise ValueError(f"feature {self.name!r}: only categories take `categories`")
            if self.unknown != "refuse":
                raise ValueError(f"feature {self.name!r}: only categories take `unknown`")
        return self

    def limit_range(self) -> tuple[float | None, float | None]:
        lim = self.limits or Range()
        return lim.min, lim.max


class LabelDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    positive_class: int = 1


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 schema as version 2: each feature's `min`/`max` become its `limits`.

    They were hard limits in version 1 (the predictor refused values outside them), and a
    predictor serving a version-1 bento, and the monitor reading its registration, must keep
    agreeing on what is refused. A file without `schema_version` is version 1 when a feature
    has `min` or `max` (only version 1 had them). Re-infer the file, or move the keys under
    `expected`, to serve such values instead.
    """
    if not isinstance(data.get("features"), list):
        return data  # refused on the field itself
    features = []
    for i, feat in enumerate(data["features"]):
        if not isinstance(feat, dict):
            features.append(feat)
            continue
        extra = [k for k in V2_ONLY_KEYS if k in feat]
        if extra:
            raise ValueError(
                f"features[{i}]: {extra} exist from schema_version 2 on; set schema_version: 2"
            )
        bounds = {k: feat[k] for k in V1_RANGE_KEYS if feat.get(k) is not None}
        rest = {k: v for k, v in feat.items() if k not in V1_RANGE_KEYS}
        features.append({**rest, "limits": bounds} if bounds else rest)
    return {**data, "schema_version": SCHEMA_VERSION, "features": features}


def _declared_version(data: dict[str, Any]) -> Any:
    if "schema_version" in data:
        declared = data["schema_version"]
        return declared if isinstance(declared, int) and not isinstance(declared, bool) else None
    feats = data.get("features")
    v1 = isinstance(feats, list) and any(
        isinstance(f, dict) and any(k in f for k in V1_RANGE_KEYS) for f in feats
    )
    return 1 if v1 else SCHEMA_VERSION


class ModelSchema(BaseModel):
    """Features in model-input order, the binary label, the decision threshold, the slice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1, 2] = Field(
        default=SCHEMA_VERSION,
        description="2; a version-1 schema is read as 2 with its min/max as `limits`",
    )
    features: list[Feature] = Field(min_length=1)
    label: LabelDefinition
    threshold: float = Field(default=0.5, gt=0, lt=1)
    segment: str | None = Field(
        default=None, description="A category feature whose values are analysed as slices"
    )

    @model_validator(mode="before")
    @classmethod
    def _read_version(cls, data: Any) -> Any:
        if isinstance(data, dict) and _declared_version(data) == 1:
            return _upgrade_v1(data)
        return data

    # Field validators (not one model validator) so that an error names its field, e.g.
    # `schema.segment`, and each raises ValueError: pydantic turns only ValueError and
    # AssertionError into a validation error; a KeyError here was a 500 on registration.
    @field_validator("schema_version", mode="before")
    @classmethod
    def _integer_version(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be the integer 1 or 2, not a boolean")
        return value

    @field_validator("features")
    @classmethod
    def _unique(cls, features: list[Feature]) -> list[Feature]:
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        return features

    @field_validator("segment")
    @classmethod
    def _segment_is_a_category(cls, segment: str | None, info: ValidationInfo) -> str | None:
        features = info.data.get("features")
        if segment is None or features is None:
            return segment  # no features: refused on their own field
        seg = next((f for f in features if f.name == segment), None)
        if seg is None:
            names = [f.name for f in features]
            raise ValueError(f"segment {segment!r} is not one of the features {names}")
        if seg.dtype != "category":
            raise ValueError(f"segment {segment!r} must be a category feature")
        return segment

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def find(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name == name), None)

    def feature(self, name: str) -> Feature:
        found = self.find(name)
        if found is None:
            raise KeyError(name)
        return found

    @property
    def categorical_names(self) -> list[str]:
        return [f.name for f in self.features if f.dtype == "category"]

    @property
    def continuous_names(self) -> list[str]:
        return [f.name for f in self.features if f.dtype != "category"]

    def to_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Model input: float32, schema order, categories as their index, missing (and an
        unknown category served as missing) as NaN."""
        cols = []
        for feat in self.features:
            col = frame[feat.name]
            if feat.dtype == "category":
                codes = {c: float(i) for i, c in enumerate(feat.categories or [])}
                cols.append(col.map(codes).to_numpy(dtype=np.float64, na_value=np.nan))
            else:
                cols.append(pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64))
        return np.column_stack(cols).astype(np.float32)

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`to_matrix` with the feature names as columns, for training: a category's code in
        training is then the code serving and shadow re-scoring use. A present value outside
        the categories of an `unknown: refuse` feature would silently become NaN here while
        the predictor refuses it, so it is refused, naming the column.
        """
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise ValueError(f"columns missing from the frame: {missing}")
        for feat in self.features:
            if feat.dtype != "category" or feat.unknown == "missing":
                continue
            col = frame[feat.name]
            unknown = col.notna() & ~col.isin(feat.categories or [])
            if unknown.any():
                values = sorted({str(v) for v in col[unknown].unique()})[:5]
                raise ValueError(
                    f"column {feat.name!r}: {int(unknown.sum())} values outside the schema's "
                    f"categories, e.g. {values}"
                )
        return pd.DataFrame(self.to_matrix(frame), columns=self.feature_names, index=frame.index)

    def valid_rows(self, frame: pd.DataFrame) -> pd.Series:
        """Rows the predictor would accept: types, limits, categories, nullability (a value
        outside the expected range is accepted)."""
        ok = pd.Series(True, index=frame.index)
        for feat in self.features:
            col = frame[feat.name]
            missing = col.isna()
            if feat.dtype == "category":
                known = col.isin(feat.categories or [])
                if feat.unknown == "missing":
                    known |= col.map(lambda v: isinstance(v, str))
                ok &= known | (missing & feat.nullable)
                continue
            num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            inside = np.isfinite(num)
            if feat.limits is not None:
                inside &= ~feat.limits.outside(num)
            ok &= pd.Series(inside, index=frame.index) | (missing & feat.nullable)
        return ok

    def outside(self, feat: Feature, col: pd.Series) -> np.ndarray:
        """Per value: present and outside the expected range or the limits, not finite, or
        (a category) not one of `categories`. What the monitor counts."""
        absent = col.isna().to_numpy()
        if feat.dtype == "category":
            return ~col.isin(feat.categories or []).to_numpy() & ~absent
        num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(num)
        for bounds in (feat.expected, feat.limits):
            if bounds is not None:
                bad |= bounds.outside(num)
        return bad & ~absent

    def out_of_range(self, frame: pd.DataFrame) -> dict[str, float]:
        """Share of present values outside the expected range (or limits) or categories, per
        feature."""
        shares: dict[str, float] = {}
        for feat in self.features:
            col = frame[feat.name]
            present = int(col.notna().sum())
            bad = self.outside(feat, col)
            shares[feat.name] = float(bad.sum() / present) if present else 0.0
        return shares

    def record_model(self, name: str = "Record") -> type[BaseModel]:
        """A strict pydantic model of one request record, with limits in its JSON schema."""
        fields: dict[str, Any] = {}
        for feat in self.features:
            fields[feat.name] = _field_for(feat)
        model = create_model(
            name,
            __config__=ConfigDict(extra="forbid", allow_inf_nan=False, strict=True),
            **fields,
        )
        return model


def _field_for(feat: Feature) -> tuple[Any, Any]:
    desc = feat.description or feat.name
    if feat.dtype == "category":
        if feat.unknown == "missing":
            known = ", ".join(feat.categories or [])
            more = f"{desc}. One of: {known}; another value is served as missing"
            return (str | None if feat.nullable else str, Field(..., description=more))
        lit: Any = Literal[tuple(feat.categories or [])]
        typ: Any = lit | None if feat.nullable else lit
        return (typ, Field(..., description=desc))
    base: Any = int if feat.dtype == "int" else float
    typ = base | None if feat.nullable else base
    constraints: dict[str, Any] = {}
    low, high = feat.limit_range()
    if low is not None:
        constraints["ge"] = math.ceil(low) if feat.dtype == "int" else low
    if high is not None:
        constraints["le"] = math.floor(high) if feat.dtype == "int" else high
    if feat.expected is not None:
        desc = f"{desc}. Expected {feat.expected.text()} (served outside it, and counted)"
    # Every field is required; a nullable one may be null (= missing), never absent.
    return (typ, Field(..., description=desc, **constraints))


def is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

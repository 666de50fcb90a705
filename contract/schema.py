"""The feature schema: the contract that travels in the model's metadata.

The predictor validates requests with it, the monitor reads columns, types, ranges, the
label and the segment column from it, and both turn records into the model's input matrix
with `to_matrix`, so a shadow re-score sees exactly what serving saw. Depends on pydantic,
numpy and pandas only: the monitor image imports it without BentoML.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

SCHEMA_VERSION = 1


class Feature(BaseModel):
    """One input column. Numbers are finite unless `nullable` (then null means missing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    dtype: Literal["float", "int", "category"] = "float"
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    categories: list[str] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.dtype == "category":
            if not self.categories:
                raise ValueError(f"feature {self.name!r}: a category needs `categories`")
            if self.min is not None or self.max is not None:
                raise ValueError(f"feature {self.name!r}: a category takes no min/max")
        elif self.categories is not None:
            raise ValueError(f"feature {self.name!r}: only categories take `categories`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} > max {self.max}")
        return self


class LabelDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    positive_class: int = 1


class ModelSchema(BaseModel):
    """Features in model-input order, the binary label, the decision threshold, the slice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    features: list[Feature] = Field(min_length=1)
    label: LabelDefinition
    threshold: float = Field(default=0.5, gt=0, lt=1)
    segment: str | None = Field(
        default=None, description="A category feature whose values are analysed as slices"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelSchema:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        if self.segment is not None:
            seg = self.feature(self.segment)
            if seg.dtype != "category":
                raise ValueError(f"segment {self.segment!r} must be a category feature")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for feat in self.features:
            if feat.name == name:
                return feat
        raise KeyError(name)

    @property
    def categorical_names(self) -> list[str]:
        return [f.name for f in self.features if f.dtype == "category"]

    @property
    def continuous_names(self) -> list[str]:
        return [f.name for f in self.features if f.dtype != "category"]

    def to_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Model input: float32, schema order, categories as their index, missing as NaN."""
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
        a feature's categories would silently become NaN, so it is refused, naming the column.
        """
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise ValueError(f"columns missing from the frame: {missing}")
        for feat in self.features:
            if feat.dtype != "category":
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
        """Rows the predictor would accept (used to keep training data inside the contract)."""
        ok = pd.Series(True, index=frame.index)
        for feat in self.features:
            col = frame[feat.name]
            missing = col.isna()
            if feat.dtype == "category":
                ok &= col.isin(feat.categories or []) | (missing & feat.nullable)
                continue
            num = pd.to_numeric(col, errors="coerce")
            inside = np.isfinite(num)
            if feat.min is not None:
                inside &= num >= feat.min
            if feat.max is not None:
                inside &= num <= feat.max
            ok &= inside | (missing & feat.nullable)
        return ok

    def out_of_range(self, frame: pd.DataFrame) -> dict[str, float]:
        """Share of present values outside the schema's range or categories, per feature."""
        shares: dict[str, float] = {}
        for feat in self.features:
            col = frame[feat.name].dropna()
            if col.empty:
                shares[feat.name] = 0.0
                continue
            if feat.dtype == "category":
                bad = ~col.isin(feat.categories or [])
            else:
                num = pd.to_numeric(col, errors="coerce")
                bad = ~np.isfinite(num)
                if feat.min is not None:
                    bad |= num < feat.min
                if feat.max is not None:
                    bad |= num > feat.max
            shares[feat.name] = float(bad.mean())
        return shares

    def record_model(self, name: str = "Record") -> type[BaseModel]:
        """A strict pydantic model of one request record, with ranges in its JSON schema."""
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
        lit: Any = Literal[tuple(feat.categories or [])]
        typ: Any = lit | None if feat.nullable else lit
        return (typ, Field(..., description=desc))
    base: Any = int if feat.dtype == "int" else float
    typ = base | None if feat.nullable else base
    constraints: dict[str, Any] = {}
    if feat.min is not None:
        constraints["ge"] = int(feat.min) if feat.dtype == "int" else feat.min
    if feat.max is not None:
        constraints["le"] = int(feat.max) if feat.dtype == "int" else feat.max
    # Every field is required; a nullable one may be null (= missing), never absent.
    return (typ, Field(..., description=desc, **constraints))


def is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

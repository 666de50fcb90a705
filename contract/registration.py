"""A model version as registered by its predictor: the monitor's only source of truth about it.

Validated on the way in (schema, reference rows, artifact) so analysis never meets a
malformed version. The artifact is XGBoost UBJSON/JSON, which cannot execute code on load.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.schema import ModelSchema

NAME_PATTERN = r"^[a-z0-9]([-._a-z0-9]{0,61}[a-z0-9])?$"
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=NAME_PATTERN, description="Model name, e.g. rain_forecast")
    version: str = Field(pattern=NAME_PATTERN, description="Model version (BentoML tag version)")
    learner: str = Field(
        default="xgboost", description="Learner family; shadow gaps compare like with like"
    )
    release: str = ""
    description: str = ""
    schema_: ModelSchema = Field(alias="schema")
    metrics: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="Offline metrics; `reference` is the shared hold-out"
    )
    feature_importance: dict[str, float] = Field(default_factory=dict)
    reference: list[dict[str, Any]] = Field(
        min_length=100, description="Labelled hold-out rows with the model's own scores"
    )
    artifact: str = Field(description="base64 of the booster in XGBoost UBJSON or JSON")
    artifact_format: Literal["xgboost-ubj", "xgboost-json"] = "xgboost-ubj"

    @field_validator("artifact")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"artifact is not valid base64: {exc}") from exc
        if not raw:
            raise ValueError("artifact is empty")
        if len(raw) > MAX_ARTIFACT_BYTES:
            raise ValueError(f"artifact is larger than {MAX_ARTIFACT_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _reference_matches_schema(self) -> Registration:
        need = {*self.schema_.feature_names, self.schema_.label.name, "probability"}
        for i, row in enumerate(self.reference[:1000]):
            missing = need - row.keys()
            if missing:
                raise ValueError(f"reference[{i}] lacks {sorted(missing)}")
        unknown = set(self.feature_importance) - set(self.schema_.feature_names)
        if unknown:
            raise ValueError(f"feature_importance names unknown features {sorted(unknown)}")
        return self

    @property
    def schema(self) -> ModelSchema:  # type: ignore[override]
        return self.schema_

    def artifact_bytes(self) -> bytes:
        return base64.b64decode(self.artifact)

    def reference_frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.reference)

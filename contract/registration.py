"""A model version as registered by its predictor: the monitor's only source of truth about it.

Validated on the way in (schema, reference rows, artifact) so analysis never meets a
malformed version: every reference row carries the schema's features with values of their
type (a number or null; a category's string or null), a label of 0 or 1 and a probability in
[0, 1], with at least `MIN_ROWS_PER_CLASS` rows of each class. The artifact is XGBoost
UBJSON/JSON, which cannot execute code on load (the monitor still first loads it in an
isolated child process: monitor/analysis/artifact.py).

A version name is bound to its artifact (`digest_bound`): `<release>-<sha256(artifact)[:n]>`
or the bare digest prefix, n >= `MIN_DIGEST_CHARS`, as `modelguard package` names versions
(bentos/cli/package.py `version_of`). A predictor may only register such a name, so it cannot
take the name of a version it does not have the booster of (docs/monitor.md#trust-boundary).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from typing import Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contract.metadata import XGBOOST_LEARNER
from contract.schema import ModelSchema

NAME_PATTERN = r"^[a-z0-9]([-._a-z0-9]{0,61}[a-z0-9])?$"
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
MIN_ROWS_PER_CLASS = 20  # CBPE and the hold-out ROC AUC need both classes, a few of each
MIN_DIGEST_CHARS = 10  # as `modelguard package` names versions: 40 bits of sha256
_DIGEST_TAIL = re.compile(rf"(?:^|-)([0-9a-f]{{{MIN_DIGEST_CHARS},64}})$")


def digest_bound(version: str, artifact: bytes) -> bool:
    """True when `version` ends in a prefix of sha256(artifact) of >= MIN_DIGEST_CHARS hex
    characters (`<release>-<digest>` or `<digest>`)."""
    found = _DIGEST_TAIL.search(version)
    return found is not None and hashlib.sha256(artifact).hexdigest().startswith(found.group(1))


def _number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=NAME_PATTERN, description="Model name, e.g. rain_forecast")
    version: str = Field(pattern=NAME_PATTERN, description="Model version (BentoML tag version)")
    learner: str = Field(
        default=XGBOOST_LEARNER, description="Learner family; shadow gaps compare like with like"
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

    @field_validator("reference")
    @classmethod
    def _reference_rows(
        cls, rows: list[dict[str, Any]], info: ValidationInfo
    ) -> list[dict[str, Any]]:
        """Every row: the schema's features typed, label 0/1, probability in [0, 1]."""
        schema = info.data.get("schema_")
        if not isinstance(schema, ModelSchema):
            return rows  # the schema itself is refused, named on its own
        label = schema.label.name
        need = {*schema.feature_names, label, "probability"}
        kinds = {f.name: f.dtype for f in schema.features}
        counts = [0, 0]
        for i, row in enumerate(rows):
            missing = need - row.keys()
            if missing:
                raise ValueError(f"reference[{i}] lacks {sorted(missing)}")
            y = row[label]
            if isinstance(y, bool) or not isinstance(y, int) or y not in (0, 1):
                raise ValueError(f"reference[{i}].{label} is {y!r}: must be the integer 0 or 1")
            counts[y] += 1
            p = row["probability"]
            if not _number(p) or not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"reference[{i}].probability is {p!r}: must be in [0, 1]")
            for name, kind in kinds.items():
                value = row[name]
                if value is None:
                    continue
                ok = isinstance(value, str) if kind == "category" else _number(value)
                if not ok:
                    want = "a string or null" if kind == "category" else "a number or null"
                    raise ValueError(f"reference[{i}].{name} is {value!r}: must be {want}")
        if min(counts) < MIN_ROWS_PER_CLASS:
            raise ValueError(
                f"reference has {counts[0]} rows of {label}=0 and {counts[1]} of {label}=1:"
                f" at least {MIN_ROWS_PER_CLASS} of each are needed"
            )
        return rows

    @model_validator(mode="after")
    def _reference_matches_schema(self) -> Registration:
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

"""Request and response bodies of the monitor's HTTP API (docs/contracts.md §3).

Strict on purpose: a record is refused rather than coerced (no "1" for 1, no true for 1, no
NaN or infinity, no epoch numbers for timestamps), because a silently coerced record would
be analysed as if the predictor had served it. Every constraint shows up in /openapi.json.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, WithJsonSchema

from monitor.registration import NAME_PATTERN

MAX_FEATURES = 1000


def _iso_8601(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 string, e.g. 2013-07-01T14:00:00Z")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:64]!r} is not an ISO-8601 timestamp") from None


IsoTimestamp = Annotated[
    datetime,
    BeforeValidator(_iso_8601),
    Field(description="ISO-8601; without an offset it is taken as UTC"),
]


def _feature_value(value: Any) -> float | str | None:
    """One check with one message instead of a union's three ("float", "str", "none")."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value):
            return value
        raise ValueError("must be finite (NaN and infinity are not allowed; send null)")
    raise ValueError(f"must be a finite number, a string or null, not {type(value).__name__}")


FeatureValue = Annotated[
    float | str | None,
    PlainValidator(_feature_value),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]}),
]
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]
PredictionId = Annotated[str, Field(min_length=1, max_length=128)]


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be the integer 0 or 1, not a boolean")
    return value


BinaryClass = Annotated[Literal[0, 1], BeforeValidator(_no_bool)]


class InferenceRecord(BaseModel):
    """One prediction as the predictor served it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prediction_id: PredictionId
    model: Name
    version: Name
    timestamp: IsoTimestamp
    features: dict[Annotated[str, Field(min_length=1, max_length=128)], FeatureValue] = Field(
        max_length=MAX_FEATURES,
        description="Features exactly as received: finite numbers, strings or null",
    )
    probability: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
    predicted_class: BinaryClass


class RecordsBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[InferenceRecord] = Field(
        min_length=1, description="At most MONITOR_MAX_RECORDS_PER_REQUEST records"
    )


class RecordsAccepted(BaseModel):
    accepted: int = Field(description="Records stored by this request")
    duplicates: int = Field(description="Records whose prediction_id was already stored")


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    prediction_id: PredictionId
    label: BinaryClass
    timestamp: IsoTimestamp | None = None


class LabelsBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[LabelIn] = Field(min_length=1)


class LabelsAccepted(BaseModel):
    accepted: int


class RegistrationResult(BaseModel):
    model: str
    version: str
    status: Literal["created", "unchanged"]


class VersionSummary(BaseModel):
    model: str
    version: str
    registered_at: str | None = Field(description="None: records arrived, registration not yet")
    learner: str | None
    release: str | None
    state: Literal["registered", "unregistered", "known-good", "rejected"]
    records: int


class ClearRejectionResult(BaseModel):
    model: str
    version: str
    cleared: bool = Field(description="False when the version was not rejected")


class Problem(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    detail: str | list[Problem]


class Health(BaseModel):
    status: Literal["ok", "starting"]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON or an unusable payload"},
    413: {"model": ErrorBody, "description": "Body or record count over the limit"},
    422: {"model": ErrorBody, "description": "A field is missing or invalid (named in detail)"},
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
    503: {"model": ErrorBody, "description": "No MONITOR_REGISTRATION_TOKEN configured"},
}

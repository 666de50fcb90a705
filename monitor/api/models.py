"""Request and response bodies of the monitor's HTTP API (docs/contracts.md §3).

Validated from the raw JSON body with `model_validate_json` (strict JSON mode). Strict on
purpose: a record is refused rather than coerced (no "1" for 1, no true for 1, no
NaN or infinity, no epoch numbers for timestamps), because a silently coerced record would
be analysed as if the predictor had served it. Every constraint shows up in /openapi.json.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from contract import errors
from contract.errors import ErrorBody
from contract.registration import NAME_PATTERN

MAX_FEATURES = 1000


# Parsed by pydantic-core in strict JSON mode: an ISO-8601/RFC 3339 string, never a number.
IsoTimestamp = Annotated[
    datetime,
    Field(description="ISO-8601 date-time; without an offset it is taken as UTC"),
]
FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# A union checked in Rust (no Python call per value); `contract.errors.field_errors` folds
# its per-branch errors into one message per feature.
FeatureValue = FiniteNumber | StrictStr | None
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


class Health(BaseModel):
    status: Literal["ok", "starting"]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Error answers of each kind of route, for FastAPI's `responses=` (all are `ErrorBody`s).
SERVER_ERROR: dict[int | str, dict[str, Any]] = {
    500: _error("Unexpected server error (see the monitor's log)"),
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Malformed JSON or an unusable payload"),
    413: _error("Body or record count over the limit"),
    422: _error("A field is missing or invalid (each named in errors)"),
}
PARAMETER_ERRORS: dict[int | str, dict[str, Any]] = {
    422: _error("A path or query parameter is invalid (named in errors)"),
}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or wrong bearer token"),
    503: _error("No MONITOR_REGISTRATION_TOKEN configured"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("Unknown model or version")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _error("Same version, different content")}


def json_errors(*groups: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The groups (and the 500) for a route whose own responses are not JSON (the report):
    FastAPI would file a `model` under the route's media type, the error body is JSON."""
    merged = {**SERVER_ERROR, **{k: v for group in groups for k, v in group.items()}}
    return {status: errors.response(spec["description"]) for status, spec in merged.items()}

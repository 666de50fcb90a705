"""What crosses from the predictor (and label feeders) to the monitor: records and labels.

Validated from the raw JSON body with `model_validate_json` (strict JSON mode). Strict on
purpose: a record is refused rather than coerced (no "1" for 1, no true for 1, no
NaN or infinity, no epoch numbers for timestamps), because a silently coerced record would
be analysed as if the predictor had served it. Every constraint shows up in the monitor's
/openapi.json; the predictor's shipper writes exactly this shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

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
    timestamp: Annotated[IsoTimestamp, Field(description="When the predictor served it")]
    event_time: Annotated[
        IsoTimestamp | None,
        Field(
            description="When the event it scores happened (a backfill's own time); "
            "null or absent: `timestamp`. Chunks by period and the report's time axis use it"
        ),
    ] = None
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


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    prediction_id: PredictionId
    label: BinaryClass
    timestamp: IsoTimestamp | None = None


class LabelsBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[LabelIn] = Field(min_length=1)

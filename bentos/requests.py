"""The predictor's request bodies and headers: parsed and validated before any scoring.

A bad request is answered with a 400/413 naming `records[i].field` and the problem, as a
`contract.errors.ErrorBody`, instead of BentoML's generic handler (which also logs a
traceback per bad request). The request model is built from the model's own schema, so
`/docs.json` states every field's type, range, nullability and categories.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import bentoml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.requests import Request
from starlette.responses import Response

from contract.errors import ErrorBody
from contract.schema import ModelSchema


class Prediction(BaseModel):
    prediction_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="uuid4 hex; joins labels")
    probability: float = Field(
        ge=0, le=1, description="Predicted probability of the positive class"
    )
    predicted_class: int = Field(
        ge=0, le=1, description="1 when probability >= the model threshold"
    )
    model_version: str = Field(description="Version of the model that served this record")


class Rejected:
    """A refused request, carried to the API method so it answers without an exception."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        self.status = status
        self.body = body

    def response(self) -> Response:
        return Response(
            self.body.model_dump_json(), status_code=self.status, media_type="application/json"
        )


def _category_hint(schema: ModelSchema, err: Mapping[str, Any]) -> str | None:
    """An unknown category names the categories (pydantic lists the Literal's reprs)."""
    parts = err.get("loc", ())
    if len(parts) < 3 or parts[0] != "records" or not isinstance(parts[1], int):
        return None
    field = str(parts[2])
    if err.get("type") != "literal_error" and "literal" not in str(parts[-1]):
        return None
    feat = schema.feature(field) if field in schema.feature_names else None
    if feat is None or not feat.categories:
        return None
    return f"unknown category; expected one of {feat.categories}"


def describe(exc: ValidationError, schema: ModelSchema) -> Rejected:
    """A refused body: 413 when there are more records than the route takes, else 400."""
    raw = exc.errors(include_url=False, include_input=False)
    too_many = any(e["type"] == "too_long" and tuple(e["loc"]) == ("records",) for e in raw)
    body = ErrorBody.from_validation(raw, explain=lambda err, _loc: _category_hint(schema, err))
    return Rejected(413 if too_many else 400, body)


LOG_HEADER = "x-modelguard-log"
EVENT_TIME_HEADER = "x-modelguard-event-time"


class RequestRecords(list[Any]):
    """A request's validated records, with what its headers say about logging them."""

    log: bool = True
    event_time: str | None = None


def logging_headers(headers: Mapping[str, str]) -> tuple[bool, str | None] | Rejected:
    """(log the records?, their event time as ISO-8601 UTC) from the request headers."""
    flag = headers.get(LOG_HEADER, "on").strip().lower()
    if flag not in ("on", "off"):
        return Rejected(400, ErrorBody.about(f"must be on or off, got {flag!r}", loc=LOG_HEADER))
    raw = headers.get(EVENT_TIME_HEADER)
    if raw is None:
        return flag == "on", None
    try:
        stamp = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return Rejected(
            400, ErrorBody.about("must be an ISO-8601 date-time", loc=EVENT_TIME_HEADER)
        )
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    return flag == "on", stamp.isoformat()


class _RecordsRequest(bentoml.IODescriptor):
    """Parses and validates the body itself so that errors name record, field and problem."""

    model_config = ConfigDict(extra="forbid")
    max_records: ClassVar[int] = 1
    schema: ClassVar[ModelSchema]

    @classmethod
    async def from_http_request(cls, request: Request, serde: Any) -> Any:
        steering = logging_headers(request.headers)
        if isinstance(steering, Rejected):
            return cls.model_construct(records=steering)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cls.max_records * 4096:
            too_big = ErrorBody.about(f"larger than {cls.max_records * 4096} bytes", loc="body")
            return cls.model_construct(records=Rejected(413, too_big))
        body = await request.body()
        media = request.headers.get("content-type", "").split(";")[0].strip()
        if media in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines"):
            lines = [line for line in body.splitlines() if line.strip()]
            body = b'{"records":[' + b",".join(lines) + b"]}"
        try:
            parsed = cls.model_validate_json(body or b"{}")
        except ValidationError as exc:
            return cls.model_construct(records=describe(exc, cls.schema))
        records = RequestRecords(parsed.records)
        records.log, records.event_time = steering
        return cls.model_construct(records=records)


def request_model(
    name: str, schema: ModelSchema, max_records: int, doc: str
) -> type[bentoml.IODescriptor]:
    """A route's request body, `{"records": [...]}`, built from the model's own schema."""
    record = schema.record_model("Record")
    model = create_model(
        name,
        __base__=_RecordsRequest,
        __doc__=doc,
        records=(list[record], Field(min_length=1, max_length=max_records, description=doc)),  # type: ignore[valid-type]
    )
    model.max_records = max_records
    model.schema = schema
    return model

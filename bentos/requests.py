"""The predictor's request bodies, headers and `?explain`: parsed and validated before scoring.

A bad request becomes a `Rejected` (the API method answers it as is) instead of an exception
for BentoML's generic handler, which also logs a traceback per bad request: a 400 naming
`records[i].field`, the header or `explain` and the problem, a 413 for too many records or
bytes, a 415 for another media type, each as a `contract.errors.ErrorBody`. The request model
is built from the model's own schema, so `/docs.json` states every field's type, limits,
expected range, nullability and categories. Refused: a wrong type, a value beyond a declared
limit, a null where the feature is not nullable, an unknown category of an `unknown: refuse`
feature. Served: a value outside the expected range (the monitor counts it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import bentoml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
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


LIMIT_ERRORS = ("greater_than_equal", "less_than_equal")


def _category_hint(schema: ModelSchema, err: Mapping[str, Any]) -> str | None:
    """An unknown category names the categories (pydantic lists the Literal's reprs); a
    value beyond a declared limit says so (values outside the expected range are served)."""
    parts = err.get("loc", ())
    if len(parts) < 3 or parts[0] != "records" or not isinstance(parts[1], int):
        return None
    feat = schema.find(str(parts[2]))
    if feat is None:
        return None
    if err.get("type") in LIMIT_ERRORS and feat.limits is not None:
        return f"{err.get('msg')}: beyond the schema's declared limits {feat.limits.text()}"
    if err.get("type") != "literal_error" and "literal" not in str(parts[-1]):
        return None
    if not feat.categories:
        return None
    return f"unknown category; expected one of {feat.categories}"


def describe(exc: ValidationError, schema: ModelSchema) -> Rejected:
    """A refused body: 413 when there are more records than the route takes, else 400."""
    return rejection(exc.errors(include_url=False, include_input=False), schema)


def rejection(raw: Sequence[Mapping[str, Any]], schema: ModelSchema) -> Rejected:
    """pydantic errors (locations from `records`) as a 413 (too many records) or a 400."""
    too_many = any(e["type"] == "too_long" and tuple(e["loc"]) == ("records",) for e in raw)
    body = ErrorBody.from_validation(raw, explain=lambda err, _loc: _category_hint(schema, err))
    return Rejected(413 if too_many else 400, body)


LOG_HEADER = "x-modelguard-log"
EVENT_TIME_HEADER = "x-modelguard-event-time"


EXPLAIN_PARAM = "explain"
EXPLAIN_DEFAULT_K = 5  # `?explain=true`


class RequestRecords(list[Any]):
    """A request's validated records, with what its headers say about logging them, and how
    many contributions per record `?explain=k` asks for (0: no explanation)."""

    log: bool = True
    event_time: str | None = None
    explain: int = 0


def explain_param(query: Mapping[str, str], n_features: int) -> int | Rejected:
    """`?explain=k` (1 to the number of features) or `?explain=true` (5, or all features if
    fewer); absent or `false`: 0, no explanation. Anything else is a 400 naming `explain`."""
    raw = query.get(EXPLAIN_PARAM)
    if raw is None:
        return 0
    value = raw.strip().lower()
    if value == "false":
        return 0
    if value == "true":
        return min(EXPLAIN_DEFAULT_K, n_features)
    if value.isdigit() and 1 <= int(value) <= n_features:
        return int(value)
    return Rejected(
        400,
        ErrorBody.about(
            f"must be true, false or an integer from 1 to {n_features}, got {raw!r}",
            loc=EXPLAIN_PARAM,
        ),
    )


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


JSON_MEDIA = "application/json"
NDJSON_MEDIA = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
BYTES_PER_RECORD = 4096  # a route's body limit: this per record it takes, at most max_body_bytes


class _RefusedError(Exception):
    def __init__(self, rejected: Rejected) -> None:
        self.rejected = rejected


class _RecordsRequest(bentoml.IODescriptor):
    """Parses and validates the body itself so that errors name record, field and problem.

    Bounded memory: the body is read as it streams in and refused (413) the moment it
    passes the route's limit (a declared Content-Length over it: before a byte is read), so
    a chunked body is never read whole first. JSON lines are parsed line by line, one
    record object per line (`{r},{r}` on one line is refused, not scored as two); the raw
    body is never held whole. Other media types are a 415; nesting depth is bounded by
    pydantic-core's parser (a deep array is a 400).
    """

    model_config = ConfigDict(extra="forbid")
    max_records: ClassVar[int] = 1
    max_body_bytes: ClassVar[int] = 32 * 1024 * 1024
    accepts_ndjson: ClassVar[bool] = False
    schema: ClassVar[ModelSchema]
    record_adapter: ClassVar[TypeAdapter[Any]]

    @classmethod
    def body_limit(cls) -> int:
        return min(cls.max_records * BYTES_PER_RECORD, cls.max_body_bytes)

    @classmethod
    async def from_http_request(cls, request: Request, serde: Any) -> Any:
        steering = logging_headers(request.headers)
        if isinstance(steering, Rejected):
            return cls.model_construct(records=steering)
        explain = explain_param(request.query_params, len(cls.schema.feature_names))
        if isinstance(explain, Rejected):
            return cls.model_construct(records=explain)
        limit = cls.body_limit()
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return cls.model_construct(records=_too_big(limit))
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        ndjson = media in NDJSON_MEDIA and cls.accepts_ndjson
        if media and media != JSON_MEDIA and not ndjson:
            accepted = ", ".join(
                (JSON_MEDIA, *NDJSON_MEDIA) if cls.accepts_ndjson else (JSON_MEDIA,)
            )
            return cls.model_construct(
                records=Rejected(
                    415,
                    ErrorBody.about(f"unsupported media type {media!r}; send {accepted}", "body"),
                )
            )
        try:
            if ndjson:
                records = RequestRecords(await cls._ndjson(_limited(request.stream(), limit)))
            else:
                body = b"".join([part async for part in _limited(request.stream(), limit)])
                try:
                    parsed = cls.model_validate_json(body or b"{}")
                except ValidationError as exc:
                    return cls.model_construct(records=describe(exc, cls.schema))
                del body
                records = RequestRecords(parsed.records)
        except _RefusedError as refused:
            return cls.model_construct(records=refused.rejected)
        records.log, records.event_time = steering
        records.explain = explain
        return cls.model_construct(records=records)

    @classmethod
    async def _ndjson(cls, stream: AsyncIterator[bytes]) -> list[Any]:
        """One record object per non-blank line, validated as each line arrives."""
        out: list[Any] = []
        errors: list[dict[str, Any]] = []
        index = 0
        pending = b""

        def take(line: bytes) -> None:
            nonlocal index
            if not line.strip():
                return
            if index >= cls.max_records:
                raise _RefusedError(
                    rejection(
                        [
                            {
                                "type": "too_long",
                                "loc": ("records",),
                                "msg": f"List should have at most {cls.max_records} items",
                            }
                        ],
                        cls.schema,
                    )
                )
            try:
                out.append(cls.record_adapter.validate_json(line))
            except ValidationError as exc:
                for err in exc.errors(include_url=False, include_input=False):
                    found: dict[str, Any] = dict(err)
                    if found["type"] == "json_invalid":  # the line itself: one object per line
                        found = {
                            "type": "ndjson_line",
                            "loc": (),
                            "msg": f"line {index + 1} is not one JSON object ({found['msg']})",
                        }
                    errors.append({**found, "loc": ("records", index, *found["loc"])})
            index += 1

        async for part in stream:
            pending += part
            *lines, pending = pending.split(b"\n")
            for line in lines:
                take(line)
        take(pending)
        if errors:
            raise _RefusedError(rejection(errors, cls.schema))
        if not out:
            empty = [
                {
                    "type": "too_short",
                    "loc": ("records",),
                    "msg": "List should have at least 1 item after validation, not 0",
                }
            ]
            raise _RefusedError(rejection(empty, cls.schema))
        return out


def _too_big(limit: int) -> Rejected:
    return Rejected(413, ErrorBody.about(f"larger than {limit} bytes", loc="body"))


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The body's parts as they arrive; `_RefusedError` (413) once more than `limit` bytes came."""
    size = 0
    async for part in stream:
        size += len(part)
        if size > limit:
            raise _RefusedError(_too_big(limit))
        if part:
            yield part


def request_model(
    name: str,
    schema: ModelSchema,
    max_records: int,
    doc: str,
    *,
    max_body_bytes: int | None = None,
    ndjson: bool = False,
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
    if max_body_bytes is not None:
        model.max_body_bytes = max_body_bytes
    model.accepts_ndjson = ndjson
    model.schema = schema
    model.record_adapter = TypeAdapter(record)
    return model

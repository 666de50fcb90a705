"""HTTP plumbing of the monitor's API: body limit, body parsing, error bodies, OpenAPI.

Kept apart from the endpoints (monitor/api/routes/) so the rules for refusing a request are in one
place: 413 before a large body is read, 400 for malformed JSON, 422 naming each bad field.
Every error answer is a `contract.errors.ErrorBody`, as the predictor's are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, TypeVar

import pydantic_core
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from contract.errors import ErrorBody
from monitor.metrics import process as metrics
from monitor.store.types import StoreUnavailableError

# How long a client waits before retrying while the database is away (seconds).
STORE_RETRY_AFTER_SECONDS = 5

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


JSON_MEDIA_TYPES = frozenset({"application/json"})


class BodyTooLarge(StarletteHTTPException):
    """Raised from the wrapped `receive` when a streamed body passes the limit: a 413 (an
    HTTPException, so FastAPI's own body reading lets it through rather than making it a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is larger than {max_bytes} bytes")


class BodyLimit:
    """Bounded request bodies (ASGI middleware), in front of every route.

    - A declared `Content-Length` over `max_bytes` is a 413 before a byte is read.
    - A body is never buffered here: the app reads it as it streams in, through a `receive`
      that counts the bytes and raises `BodyTooLarge` (answered 413) the moment a chunked
      body passes the limit. So a route can check its token before reading the body, and
      no request holds more than `max_bytes` of body in memory.
    - A body that is not JSON (`Content-Type` other than application/json, `+json`) is a 415
      before it is read; a request without a body or without a Content-Type is let through
      (the route's parser refuses what is not JSON).
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        has_body = chunked or (length is not None and int(length) > 0)
        media = headers.get(b"content-type", b"").split(b";")[0].strip().decode("latin-1")
        if has_body and media and not _is_json(media):
            body = ErrorBody.about(
                f"unsupported media type {media!r}: send application/json", loc="body"
            )
            await error_response(415, body)({"type": "http"}, _no_receive, send)
            return
        size = 0
        limit = self.max_bytes

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:  # the app answered already and read on; nothing more to say
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await error_response(413, self.too_large())({"type": "http"}, _no_receive, send)

    def too_large(self) -> ErrorBody:
        return ErrorBody.about(f"request body is larger than {self.max_bytes} bytes", loc="body")


def _is_json(media: str) -> bool:
    media = media.lower()
    return media in JSON_MEDIA_TYPES or media.endswith("+json")


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def error_response(
    status: int, body: ErrorBody, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


class ApiError(Exception):
    """Raised by a handler: answer `status` with `ErrorBody.about(message, loc)`."""

    def __init__(
        self,
        status: int,
        message: str,
        loc: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.body, self.headers = status, ErrorBody.about(message, loc), headers


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field; 400 when the body is not JSON at all."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    body = getattr(exc, "body", None)
    if request.url.path == "/v1/records":
        count = (
            len(body["records"])
            if isinstance(body, dict) and isinstance(body.get("records"), list)
            else 1
        )
        metrics.records_rejected("invalid", count)
    malformed = any(e.get("type") == "json_invalid" for e in errors)
    return error_response(400 if malformed else 422, ErrorBody.from_validation(errors))


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.body, exc.headers)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's and Starlette's own HTTPExceptions (404 and 405 of the router...)."""
    assert isinstance(exc, StarletteHTTPException)
    loc = "body" if isinstance(exc, BodyTooLarge) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method of every route on this path, not the first's
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(exc.status_code, ErrorBody.about(str(exc.detail), loc), headers)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path):
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After while the database is unreachable: nothing was stored, send
    again (a predictor's spool does)."""
    metrics.set_store_up(False)
    body = ErrorBody.about("the monitor's database is unreachable; retry later")
    return error_response(503, body, {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)})


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    """500 for anything unexpected (the server still logs the traceback)."""
    return error_response(500, ErrorBody.about("internal server error (see the monitor's log)"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StoreUnavailableError, store_unavailable)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_error)


Body = TypeVar("Body", bound=BaseModel)


def parse_body(model: type[Body], raw: bytes) -> Body:
    """Parse and validate a JSON body in one pass; errors go to `validation_error`."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=_parsed_or_none(raw)) from None


def _parsed_or_none(raw: bytes) -> Any:
    """The refused body as JSON when it is JSON (to count its records), else None.

    pydantic-core's parser, not `json.loads`: it bounds the nesting depth (a 100k-deep
    array is a ValueError here, where `json.loads` raised RecursionError: a 500)."""
    try:
        return pydantic_core.from_json(raw)
    except ValueError:
        return None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body for handlers that parse the raw body themselves."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def publish_body_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add the models behind `json_body` (and what they nest) to the OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = generate()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas[model.__name__] = schema
        return doc

    app.openapi = openapi  # type: ignore[method-assign]

"""HTTP plumbing of the monitor's API: body limit, body parsing, error bodies, OpenAPI.

Kept apart from `api.py` (the endpoints) so the rules for refusing a request are in one
place: 413 before a large body is read, 400 for malformed JSON, 422 naming each bad field.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from monitor import metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """413 for bodies over `max_bytes`, checked before the body is parsed (ASGI middleware)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        # No length declared (chunked): read up to the limit, then replay to the app.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body is larger than {self.max_bytes} bytes"}, status_code=413
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """("body", "records", 3, "probability") -> "records[3].probability"."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
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
    if any(e.get("type") == "json_invalid" for e in errors):
        err = next(e for e in errors if e.get("type") == "json_invalid")
        loc = err.get("loc", ())
        where = f" at position {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
        reason = (err.get("ctx") or {}).get("error") or err.get("msg", "")
        return JSONResponse({"detail": f"malformed JSON{where}: {reason}"}, status_code=400)
    problems = _problems(errors)
    return JSONResponse({"detail": problems[:50]}, status_code=422)


Body = TypeVar("Body", bound=BaseModel)


def parse_body(model: type[Body], raw: bytes) -> Body:
    """Parse and validate a JSON body in one pass; errors go to `validation_error`."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=_parsed_or_none(raw)) from None


def _parsed_or_none(raw: bytes) -> Any:
    """The refused body as JSON when it is JSON (to count its records), else None."""
    try:
        return json.loads(raw)
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


_UNION_BRANCHES = {"float", "str", "int", "none"}


def _problems(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Field and problem per error; a feature's per-branch union errors become one."""
    out: dict[str, str] = {}
    for e in errors:
        loc = tuple(e.get("loc", ()))
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        if len(loc) >= 2 and "features" in loc[:-2] and loc[-1] in _UNION_BRANCHES:
            loc = loc[:-1]
            msg = "must be a finite number, a string or null"
            if e.get("type") == "finite_number":
                msg = "must be finite (NaN and infinity are not allowed; send null)"
            if _field(loc) in out and "finite (" in out[_field(loc)]:
                continue
        out[_field(loc)] = msg
    return [{"field": f, "problem": p} for f, p in list(out.items())[:50]]

"""The hot routes answered inside the service's ASGI stack, without BentoML's per-API layer.

Added with `add_asgi_middleware`, so it sits inside BentoML's own middleware: the metrics
middleware (the contract's `bentoml_service_request_*`, labelled by path and status as
before), OpenTelemetry (which skips these paths) and the request timeout still run. What a
`POST /predict` or `/predict_batch` no longer goes through is what sits below it: the
request-context middleware, the router and BentoML's API handler (its per-request context
objects, the input-spec machinery). The body is parsed by the same `from_http_request` of
the route's request model and answered by the same service methods, so status codes, error
bodies and the record shipping are the same code as the routed path; `/docs.json` is built
from the routes, which stay registered. Anything else (another method or path) goes on
down the stack unchanged. `PREDICTOR_FAST_PATH=false` turns it off (docs/performance.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class Route:
    """How one fast route parses (the route's request model) and answers (a service method)."""

    def __init__(self, model: Any, answer: Callable[[Any, Any], Awaitable[Response]]) -> None:
        self.model = model
        self.answer = answer


class FastPath:
    """ASGI middleware: `routes` by path (POST only); `instance()` is the live service object."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: dict[str, Route],
        instance: Callable[[], Any | None],
        server_header: str,
        failed: Callable[[], Response],
    ) -> None:
        self.app = app
        self.routes = routes
        self.instance = instance
        self.server_header = server_header
        self.failed = failed

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        route = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        owner = self.instance() if route is not None else None
        if route is None or owner is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        try:
            parsed = await route.model.from_http_request(Request(scope, receive), None)
            response = await route.answer(owner, parsed.records)
        except Exception:
            response = self.failed()
        response.headers["server"] = self.server_header  # as BentoML's handler sets it
        await response(scope, receive, send)


async def in_thread(method: Callable[[Any], Response], records: Any) -> Response:
    """A sync API method runs in a worker thread, as BentoML runs `def` APIs."""
    return await asyncio.to_thread(method, records)

"""The monitor's HTTP API (docs/contracts.md §3): ingest, registration, read-outs, /metrics.

`create_app(pieces)` builds the FastAPI routes over what `monitor.server` built (the open store, the
analysis cache and worker: `AppPieces`); it starts nothing itself. The server's start and stop run
as the app's `lifespan`, which the server passes in. The store is synchronous, so it is called only
from FastAPI's thread pool: read handlers are plain functions, write handlers read their body
asynchronously and then store through `run_in_threadpool`. The routes are in monitor/api/routes/. A
bad payload is refused before anything is written: the whole request body is validated first, then
stored in one transaction. Every error answer is a `contract.errors.ErrorBody`
(monitor/api/http.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from contract.records import LabelsBatch, RecordsBatch
from contract.registration import Registration
from monitor.api.context import AppContext, AppPieces
from monitor.api.http import BodyLimit, install_error_handlers, publish_body_schemas
from monitor.api.models import SERVER_ERROR
from monitor.api.routes import candidates, ingest, operator, probes, reads, registration, reports

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

__all__ = ["AppPieces", "Lifespan", "create_app"]


def create_app(pieces: AppPieces, *, lifespan: Lifespan | None = None) -> FastAPI:
    """The monitor's routes over `pieces`; `lifespan` (the server's) runs around serving."""
    app = FastAPI(
        title="modelguard monitor",
        version="0.1.0",
        description="Inference records, delayed labels and model registrations in; "
        "label-free performance estimates, drift and rollback evidence out.",
        lifespan=lifespan,
        responses=SERVER_ERROR,  # any route: an unexpected failure is a 500 ErrorBody
        # FastAPI's built-in OpenTelemetry instrumentation: off. It exports nothing unless
        # configured, but costs CPU on the ingest path; /metrics is our observability.
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    app.add_middleware(BodyLimit, max_bytes=pieces.settings.http.max_body_bytes)
    install_error_handlers(app)
    publish_body_schemas(app, [RecordsBatch, LabelsBatch, Registration])
    ctx = AppContext(pieces)
    for routes in (ingest, registration, candidates, reads, operator, reports, probes):
        routes.add_routes(app, ctx)
    return app

"""`/metrics` (the monitor's own registry), `/livez` and `/readyz` (started, database reachable)."""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.api.context import AppContext
from monitor.api.models import Health
from monitor.metrics import process as metrics


def add_routes(app: FastAPI, ctx: AppContext) -> None:
    @app.get("/metrics", response_class=Response)
    def get_metrics() -> Response:
        return Response(metrics.METRICS.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/livez", response_model=Health)
    def livez() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}})
    def readyz() -> Response:
        if not ctx.ready():
            return JSONResponse({"status": "starting"}, 503)
        up = ctx.store().reachable()
        metrics.set_store_up(up)
        return JSONResponse({"status": "ok" if up else "database unreachable"}, 200 if up else 503)

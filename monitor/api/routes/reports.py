"""`GET /reports/{model}`: the HTML report, built with the analysis loop's calculators."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from monitor.analysis.report import render_report
from monitor.api.context import AppContext
from monitor.api.http import ApiError
from monitor.api.models import AUTH_ERRORS, NOT_FOUND, PARAMETER_ERRORS, REPORTS_BUSY, json_errors


def add_routes(app: FastAPI, ctx: AppContext) -> None:
    settings = ctx.settings
    as_reader = ctx.as_reader()

    @app.get(
        "/reports/{model}",
        response_class=HTMLResponse,
        responses=json_errors(NOT_FOUND, PARAMETER_ERRORS, AUTH_ERRORS, REPORTS_BUSY),
        dependencies=as_reader,
    )
    def get_report(model: str) -> HTMLResponse:
        """The HTML report of every version of `model`, with the analysis loop's calculators
        (built in the analysis worker and kept until the model's analysis changes); at most
        `MONITOR_REPORT_CONCURRENCY` at once, more are a 503 with Retry-After."""
        st = ctx.store()
        if model not in st.models():
            raise ApiError(404, f"model {model!r} is unknown")
        cache = ctx.cache
        if not ctx.reports_running.acquire(blocking=False):
            raise ApiError(
                503,
                f"{settings.http.report_concurrency} reports are being built; retry later",
                headers={"Retry-After": "5"},
            )
        try:
            worker = ctx.worker
            if worker is not None:
                return HTMLResponse(worker.report(model))
            return HTMLResponse(render_report(st, model, cache=cache))
        finally:
            ctx.reports_running.release()

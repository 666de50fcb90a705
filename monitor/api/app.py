"""The monitor's HTTP API (docs/contracts.md §3): ingest, registration, read-outs, /metrics.

`create_app(settings, store=None)` builds the FastAPI app; `python -m monitor serve` runs it
with uvicorn. Handlers are plain functions (FastAPI runs them in its thread pool) because the
store is synchronous SQLite. A bad payload is refused before anything is written: the whole
request body is validated first, then stored in one transaction. Every error answer is a
`contract.errors.ErrorBody` (monitor/api/http.py). One `VersionCache` (fitted calculators per
model version) per app: the analysis loop fills it, `GET /reports/{model}` reuses it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from contract.records import LabelsBatch, RecordsBatch
from contract.registration import Registration
from monitor.analysis.cycle import VersionCache
from monitor.api.context import AppContext
from monitor.api.http import BodyLimit, install_error_handlers, publish_body_schemas
from monitor.api.models import SERVER_ERROR
from monitor.api.routes import candidates, ingest, operator, probes, reads, registration, reports
from monitor.core.settings import MonitorSettings, log_effective
from monitor.loops.background import (
    BackgroundLoops,
    analysis_pass,
    reconcile_pass,
    retention_pass,
    waking,
)
from monitor.loops.leadership import leader_of, leading
from monitor.loops.worker import AnalysisWorker
from monitor.metrics import process as metrics
from monitor.store import open_store
from monitor.store.sqlite import Store

log = logging.getLogger("modelguard.monitor")


def create_app(
    settings: MonitorSettings | None = None, store: Store | None = None, *, background: bool = True
) -> FastAPI:
    """The monitor app. Without `store` it opens `settings.db_path` at start-up and closes it
    at shutdown; `background=False` leaves out the analysis and reconcile loops."""
    settings = settings or MonitorSettings()
    holder: dict[str, Store] = {} if store is None else {"store": store}
    # the lifespan fills the context's store, cache (the analysis loop's, reused by reports)
    # and worker (where analysis and reports run); the routes read them through it
    ctx = AppContext(settings, holder)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log_effective(settings)
        owned = "store" not in holder
        if owned:
            holder["store"] = open_store(settings)
        st = holder["store"]
        cache = ctx.caches["cache"] = VersionCache.of(st, settings)
        # The analysis cycle and the reports run in a worker process (monitor/loops/worker.py)
        # so a cycle never holds this process's interpreter while it serves ingest.
        worker = AnalysisWorker(settings, metrics.METRICS) if settings.analysis_worker else None
        ctx.workers["worker"] = worker
        fits = worker if worker is not None else cache
        metrics.count_calculator_fits(lambda: fits.fits)
        loops = BackgroundLoops()
        # Every replica serves the API; only the leader (the Lease's holder with
        # MONITOR_LEADER_ELECTION, else this process) analyses, deletes and reconciles.
        leader = leader_of(settings, on_acquired=loops.waker("reconcile"))
        if background:
            leader.start()
            lead = leader.is_leader
            loops.start(
                "analysis",
                lambda: leading(
                    waking(
                        worker.cycle if worker is not None else analysis_pass(st, settings, cache),
                        loops.waker("reconcile"),
                    ),
                    lead,
                ),
                settings.analysis_interval_seconds,
            )
            loops.start(
                "retention",
                lambda: leading(retention_pass(st, settings), lead),
                settings.retention_interval_seconds,
            )
            loops.start(
                "reconcile",
                lambda: leading(
                    reconcile_pass(st, settings, loops.waker("reconcile"), loops.stop_event), lead
                ),
                settings.reconcile_interval_seconds,
            )
        app.state.loops = loops
        app.state.leader = leader
        try:
            yield
        finally:
            loops.stop()
            leader.stop()  # after the loops: a pass in progress finished under the Lease
            if worker is not None:
                worker.close()
            ctx.workers.clear()
            metrics.count_calculator_fits(None)
            ctx.caches.clear()
            if owned:
                holder.pop("store").close()

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
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    publish_body_schemas(app, [RecordsBatch, LabelsBatch, Registration])
    for routes in (ingest, registration, candidates, reads, operator, reports, probes):
        routes.add_routes(app, ctx)
    return app

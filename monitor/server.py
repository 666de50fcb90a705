"""The monitor's composition root: what one `python -m monitor serve` process runs.

`MonitorServer(settings)` builds the parts in dependency order (the store, the analysis
cache, the analysis worker, the background loops, the leadership) and then the HTTP app over
them (`monitor.api.app.create_app`), as MLServer's `server.py` does. It owns the start and
stop order, run as the app's lifespan around serving: on start the calculator-fit counter,
the leadership and the loops; on stop the loops first (a pass in progress finishes under the
Lease), then the analysis leases (this replica's models go to the others), the leadership
(the Lease is given up), the worker, and the store it opened.
`MonitorServer(settings, store, background=False).app` is an app over a given store with
nothing started (tests).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from monitor.analysis.versions import VersionCache
from monitor.api.app import create_app
from monitor.api.context import AppPieces
from monitor.core.settings import MonitorSettings, log_effective
from monitor.loops.background import (
    BackgroundLoops,
    analysis_dispatcher,
    reconcile_pass,
    retention_pass,
    waking,
)
from monitor.loops.cpus import analysis_workers
from monitor.loops.dispatch import AnalysisDispatcher
from monitor.loops.leadership import Leadership, leader_of, leading
from monitor.loops.worker import AnalysisWorker
from monitor.metrics import process as metrics
from monitor.store import Store, open_store

log = logging.getLogger("modelguard.monitor")


class MonitorServer:
    """The parts of one monitor process, built once; `app` serves them."""

    def __init__(
        self, settings: MonitorSettings, store: Store | None = None, *, background: bool = True
    ) -> None:
        log_effective(settings)
        self.settings = settings
        self.background = background
        self.started = False
        self._owns_store = store is None
        self.store: Store = store if store is not None else open_store(settings.store)
        # the analysis loop's fitted calculators, reused by in-process reports
        self.cache = VersionCache.of(self.store, settings)
        # The analysis cycle and the reports run in a worker process (monitor/loops/worker.py)
        # so a cycle never holds this process's interpreter while it serves ingest.
        self.worker = (
            AnalysisWorker(settings, metrics.METRICS, analysis_workers(settings.analysis.workers))
            if settings.analysis.worker
            else None
        )
        self.dispatcher: AnalysisDispatcher | None = None
        self.loops = BackgroundLoops()
        # Every replica serves the API; only the leader (the Lease's holder with
        # MONITOR_LEADER_ELECTION, else this process) analyses, deletes and reconciles.
        self.leader: Leadership = leader_of(settings, on_acquired=self.loops.waker("reconcile"))
        pieces = AppPieces(settings, self.store, self.cache, self.worker, self.is_started)
        self.app: FastAPI = create_app(pieces, lifespan=self.lifespan)

    def is_started(self) -> bool:
        return self.started

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            self.stop()

    def start(self) -> None:
        fits = self.worker if self.worker is not None else self.cache
        metrics.count_calculator_fits(lambda: fits.fits, lambda: fits.loads)
        if self.background:
            self.leader.start()
            self._start_loops()
        self.started = True

    def _start_loops(self) -> None:
        settings, store, loops = self.settings, self.store, self.loops
        lead = self.leader.is_leader
        worker = self.worker

        def analysis() -> Callable[[], Any] | None:
            # Every replica analyses its share of the models (per-model leases in the
            # database, monitor/loops/dispatch.py); only the leader reconciles.
            self.dispatcher = analysis_dispatcher(store, settings, worker, self.cache)
            return waking(self.dispatcher, loops.waker("reconcile"))

        loops.start("analysis", analysis, settings.analysis.interval_seconds)
        loops.start(
            "retention",
            lambda: leading(retention_pass(store, settings), lead),
            settings.store.retention_interval_seconds,
        )
        loops.start(
            "reconcile",
            lambda: leading(
                reconcile_pass(store, settings, loops.waker("reconcile"), loops.stop_event), lead
            ),
            settings.operator.reconcile_interval_seconds,
        )

    def stop(self) -> None:
        self.started = False
        self.loops.stop()
        if self.dispatcher is not None:
            self.dispatcher.close()  # after the loops: this replica's models go to the others
        self.leader.stop()  # after the loops: a pass in progress finished under the Lease
        if self.worker is not None:
            self.worker.close()
        metrics.count_calculator_fits(None)
        if self._owns_store:
            self.store.close()


def serve(settings: MonitorSettings, *, host: str | None = None, port: int | None = None) -> None:
    """Build the monitor and serve it with uvicorn until SIGTERM (or SIGINT)."""
    import uvicorn

    server = MonitorServer(settings)
    uvicorn.run(
        server.app,
        host=host or settings.http.host,
        port=port or settings.http.port,
        log_level=settings.logging.level.lower(),
        access_log=False,  # 40+ requests/s of ingest would drown the useful lines
        timeout_graceful_shutdown=30,
    )

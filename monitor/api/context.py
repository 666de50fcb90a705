"""What the routes of one app share: the pieces the server built, and the roles' guard.

`monitor.server` builds the pieces (`AppPieces`: settings, the open store, the analysis cache
and worker, whether the server has started) and hands them to `create_app`
(monitor/api/app.py); every route module (monitor/api/routes/) reads them through one
`AppContext`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends

from monitor.analysis.versions import VersionCache
from monitor.api.auth import Guard, Role
from monitor.core.settings import MonitorSettings
from monitor.loops.worker import AnalysisWorker
from monitor.store.protocol import Store


def _always() -> bool:
    return True


@dataclass(frozen=True)
class AppPieces:
    """What the routes serve from. `cache` holds the fitted calculators the analysis loop
    fills and in-process reports reuse; `worker` (None: reports in this process) builds the
    reports with its own; `ready` answers /readyz (the server's parts are started)."""

    settings: MonitorSettings
    store: Store
    cache: VersionCache
    worker: AnalysisWorker | None = None
    ready: Callable[[], bool] = _always


@dataclass
class AppContext:
    pieces: AppPieces
    guard: Guard = field(init=False)
    reports_running: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.guard = Guard(self.settings)
        self.reports_running = threading.BoundedSemaphore(self.settings.http.report_concurrency)

    @property
    def settings(self) -> MonitorSettings:
        return self.pieces.settings

    def store(self) -> Store:
        return self.pieces.store

    @property
    def cache(self) -> VersionCache:
        return self.pieces.cache

    @property
    def worker(self) -> AnalysisWorker | None:
        return self.pieces.worker

    def ready(self) -> bool:
        return self.pieces.ready()

    # Roles and their tokens (monitor/api/auth.py): each dependency reads only the
    # Authorization header, so it runs before a handler reads the body.
    def as_role(self, role: Role) -> list[Any]:
        return [Depends(self.guard.require(role))]

    def as_reader(self) -> list[Any]:
        """Without a reader token reads are open, and the OpenAPI document says so."""
        if not self.guard.configured("reader"):
            return []
        return [Depends(self.guard.require("reader", "operator"))]

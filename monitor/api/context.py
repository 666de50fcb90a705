"""What the routes of one app share: settings, the store, the analysis cache and worker, roles.

`create_app` (monitor/api/app.py) builds one `AppContext`; its lifespan fills `holder`,
`caches` and `workers` at start-up and empties them at shutdown, and every route module
(monitor/api/routes/) reads them through it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends

from monitor.analysis.cycle import VersionCache
from monitor.api.auth import Guard, Role
from monitor.api.http import ApiError
from monitor.core.settings import MonitorSettings
from monitor.loops.worker import AnalysisWorker
from monitor.store.protocol import Store


@dataclass
class AppContext:
    settings: MonitorSettings
    holder: dict[str, Store]  # "store": opened by the lifespan unless passed in
    caches: dict[str, VersionCache] = field(default_factory=dict)  # "cache": loop's, for reports
    workers: dict[str, AnalysisWorker | None] = field(default_factory=dict)  # "worker"
    guard: Guard = field(init=False)
    reports_running: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.guard = Guard(self.settings)
        self.reports_running = threading.BoundedSemaphore(self.settings.report_concurrency)

    def store(self) -> Store:
        st = self.holder.get("store")
        if st is None:
            raise ApiError(503, "the store is not open yet")
        return st

    # Roles and their tokens (monitor/api/auth.py): each dependency reads only the
    # Authorization header, so it runs before a handler reads the body.
    def as_role(self, role: Role) -> list[Any]:
        return [Depends(self.guard.require(role))]

    def as_reader(self) -> list[Any]:
        """Without a reader token reads are open, and the OpenAPI document says so."""
        if not self.guard.configured("reader"):
            return []
        return [Depends(self.guard.require("reader", "operator"))]

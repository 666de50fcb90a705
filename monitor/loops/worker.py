"""The analysis worker: the analysis cycle and the reports, in a process of their own.

Why a process: an analysis cycle is seconds of CPU in pandas, numpy and NannyML, much of it
holding the interpreter lock. In a thread of the server it held ingest up (an analysis over
152k rows raised ingest p99 from 46 ms to 769 ms). Here the server keeps the HTTP requests
and the operator; one worker process (spawned, so it shares no locks with the server's
threads) opens the same store (`open_store`; on SQLite the same file in WAL mode: its reads
never block the server's writes, and its few writes, chunk evidence and chunking status, are
short transactions) and runs:

- `cycle()`: one `run_cycle` with the worker's `VersionCache`. What the cycle publishes is
  recorded in the worker and replayed onto the server's own metrics registry, so `/metrics`
  is exactly what an in-process cycle would have published.
- `report(model)`: the HTML report, built with the same `VersionCache` (the calculators the
  analysis fitted are reused, `modelguard_monitor_calculator_fits_total` counts the worker's
  fits), and cached in the worker until the model's analysis, versions or audit change.

Tasks run one at a time. The worker exits when the server does (it watches its parent), and
ignores SIGTERM and SIGINT: the server stops it after the loops, letting a cycle in progress
finish its write. A crashed worker is replaced at the next call.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from monitor.core.evidence import ChunkEvidence
from monitor.core.settings import MonitorSettings

log = logging.getLogger("modelguard.monitor")
T = TypeVar("T")


@dataclass
class Outcome:
    """What one task in the worker produced, sent back to the server."""

    value: Any = None
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    fits: int = 0
    loads: int = 0  # the VersionCache's loads of saved fits (versions.py)


class Recorder:
    """A `monitor.analysis.cycle.MetricsSink` that records every call, to replay elsewhere."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


class AnalysisWorker:
    """The server's handle on its worker process (started at the first call)."""

    def __init__(self, settings: MonitorSettings, publish_to: Any) -> None:
        self._settings = settings
        self._publish_to = publish_to
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.fits = 0  # the worker's VersionCache fits, as of its last answer
        self.loads = 0  # and its loads of saved fits

    def cycle(self) -> list[ChunkEvidence]:
        """One analysis cycle in the worker; its metrics published here."""
        outcome = self._call(_task_cycle)
        for name, args in outcome.calls:
            getattr(self._publish_to, name)(*args)
        return cast(list[ChunkEvidence], outcome.value)

    def report(self, model: str) -> str:
        """The HTML report of `model`, built (or reused) by the worker."""
        return cast(str, self._call(_task_report, model).value)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the analysis worker is stopped")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(self._settings, os.getpid()),
                )
            return self._pool

    def _call(self, task: Callable[..., Outcome], *args: Any) -> Outcome:
        pool = self._executor()
        try:
            outcome = pool.submit(task, *args).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None  # the next call starts a new worker
            raise
        self.fits, self.loads = outcome.fits, outcome.loads
        return outcome

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------ in the worker process

_WORKER: dict[str, Any] = {}


def _init_worker(settings: MonitorSettings, parent_pid: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=settings.logging.level, format="%(asctime)s %(levelname)s analysis-worker %(message)s"
    )
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    from monitor.analysis.cycle import CycleOptions
    from monitor.analysis.versions import VersionCache
    from monitor.loops.background import plan_reader
    from monitor.store import open_store

    store = open_store(settings.store)
    _WORKER.update(
        settings=settings,
        options=CycleOptions.of(settings),
        store=store,
        cache=VersionCache.of(store, settings),
        plans=plan_reader(settings, store),
        reports={},
    )


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(0)


def _task_cycle() -> Outcome:
    from monitor.analysis.cycle import run_cycle

    recorder = Recorder()
    w = _WORKER
    evidence = run_cycle(w["store"], w["options"], w["cache"], cast(Any, recorder), w["plans"]())
    return Outcome(evidence, recorder.calls, w["cache"].fits, w["cache"].loads)


def _task_report(model: str) -> Outcome:
    from monitor.analysis.report import render_report

    w = _WORKER
    key = w["store"].analysis_mark(model)
    cached = w["reports"].get(model)
    if cached is None or cached[0] != key:
        cached = w["reports"][model] = (key, render_report(w["store"], model, cache=w["cache"]))
    return Outcome(cached[1], [], w["cache"].fits, w["cache"].loads)

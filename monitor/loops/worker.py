"""The analysis workers: analysis units and the reports, in processes of their own.

Why processes: an analysis is seconds of CPU in pandas, numpy and NannyML, much of it
holding the interpreter lock. In a thread of the server it held ingest up (an analysis over
152k rows raised ingest p99 from 46 ms to 769 ms). Here the server keeps the HTTP requests
and the operator; `MONITOR_ANALYSIS_WORKERS` worker processes (default: one per CPU the pod
may use, `cpus.py`; spawned, so they share no locks with the server's threads), each a slot
of its own, open the same store (`open_store`; on SQLite the same file in WAL mode: its
reads never block the server's writes, and its few writes, chunk evidence and chunking
status, are short transactions) and run:

- `unit(slot, model, version, plan)`: one version's `analyse_unit` and its model's
  candidates and label lag (`cycle.finish_model`), with the slot's `VersionCache`. The
  analysis loop (`dispatch.py`) gives each slot one unit at a time, never two units of one
  model at once. What a unit publishes is recorded in the worker and replayed onto the
  server's own metrics registry (one replay at a time), so `/metrics` is exactly what an
  in-process cycle would have published.
- `cycle()`: one whole `run_cycle` on slot 0 (what the loop ran before the queue).
- `report(model)`: the HTML report, built on slot 0 with its `VersionCache` (the calculators
  the analysis fitted are reused, `modelguard_monitor_calculator_fits_total` counts every
  slot's fits), and cached in the worker until the model's analysis, versions or audit change.

The workers exit when the server does (each watches its parent), and ignore SIGTERM and
SIGINT: the server stops them after the loops, letting a unit in progress finish its write.
A crashed worker is replaced at its slot's next call.
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
from typing import Any, cast

from monitor.analysis.cycle import UnitResult
from monitor.analysis.plan import ChunkPlan
from monitor.core.evidence import ChunkEvidence
from monitor.core.settings import MonitorSettings

log = logging.getLogger("modelguard.monitor")


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
    """The server's handle on its worker processes (each started at its slot's first call)."""

    def __init__(self, settings: MonitorSettings, publish_to: Any, slots: int = 1) -> None:
        self._settings = settings
        self._publish_to = publish_to
        self._pools: list[ProcessPoolExecutor | None] = [None] * max(1, slots)
        self._fits = [0] * max(1, slots)
        self._loads = [0] * max(1, slots)
        self._lock = threading.Lock()
        self._replay = threading.Lock()
        self._closed = False

    @property
    def slots(self) -> int:
        return len(self._pools)

    @property
    def fits(self) -> int:
        """The workers' VersionCache fits, as of each one's last answer."""
        return sum(self._fits)

    @property
    def loads(self) -> int:
        """The workers' VersionCache loads of saved fits, as of each one's last answer."""
        return sum(self._loads)

    def unit(self, slot: int, model: str, version: str, plan: ChunkPlan) -> UnitResult:
        """One version analysed on worker `slot`; its metrics published here."""
        outcome = self._call(slot, _task_unit, model, version, plan)
        self._publish(outcome)
        return cast(UnitResult, outcome.value)

    def cycle(self) -> list[ChunkEvidence]:
        """One whole analysis cycle on slot 0; its metrics published here."""
        outcome = self._call(0, _task_cycle)
        self._publish(outcome)
        return cast(list[ChunkEvidence], outcome.value)

    def report(self, model: str) -> str:
        """The HTML report of `model`, built (or reused) by worker 0."""
        return cast(str, self._call(0, _task_report, model).value)

    def _publish(self, outcome: Outcome) -> None:
        with self._replay:
            for name, args in outcome.calls:
                getattr(self._publish_to, name)(*args)

    def _executor(self, slot: int) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the analysis worker is stopped")
            pool = self._pools[slot]
            if pool is None:
                pool = self._pools[slot] = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(self._settings, os.getpid()),
                )
            return pool

    def _call(self, slot: int, task: Callable[..., Outcome], *args: Any) -> Outcome:
        pool = self._executor(slot)
        try:
            outcome = pool.submit(task, *args).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pools[slot] is pool:
                    self._pools[slot] = None  # the next call starts a new worker
            raise
        self._fits[slot], self._loads[slot] = outcome.fits, outcome.loads
        return outcome

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._pools = self._pools, [None] * len(self._pools)
        for pool in pools:
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


def _task_unit(model: str, version: str, plan: ChunkPlan) -> Outcome:
    from monitor.analysis.cycle import analyse_unit, finish_model

    recorder = Recorder()
    w = _WORKER
    sink = cast(Any, recorder)
    result = analyse_unit(w["store"], w["options"], w["cache"], sink, plan, model, version)
    finish_model(w["store"], w["cache"], sink, model)
    return Outcome(result, recorder.calls, w["cache"].fits, w["cache"].loads)


def _task_report(model: str) -> Outcome:
    from monitor.analysis.report import render_report

    w = _WORKER
    key = w["store"].analysis_mark(model)
    cached = w["reports"].get(model)
    if cached is None or cached[0] != key:
        cached = w["reports"][model] = (key, render_report(w["store"], model, cache=w["cache"]))
    return Outcome(cached[1], [], w["cache"].fits, w["cache"].loads)

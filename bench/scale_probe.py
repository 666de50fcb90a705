"""What `bench/scale_bench.py` reads off running monitors: memory, CPU, /metrics, the reconcile
pass, and which chunks are analysed yet (read from the store, as the operator reads them).

Why a module of its own: the run (bench/scale_run.py) drives the monitors; these probes only
look, and each is small enough to check by reading.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil


def tree(pid: int) -> list[psutil.Process]:
    """A process and its live descendants (the analysis worker is a child of the server)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of the monitor process trees so far (reaped children too)."""
    total = 0.0
    for pid in pids:
        for proc in tree(pid):
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system
            if proc.pid == pid:
                total += t.children_user + t.children_system
    return total


def rss_bytes(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        for proc in tree(pid):
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
    return total


class PeakRss:
    """Samples the summed RSS of every monitor process every half second, keeps the peak."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids, self.peak = list(pids), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pids))
            self._stop.wait(0.5)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def scrape(url: str, times: int = 3) -> dict[str, Any]:
    """/metrics: series (sample lines), bytes, median seconds per scrape."""
    took, text = [], ""
    with httpx.Client(timeout=120) as client:
        for _ in range(times):
            t0 = time.perf_counter()
            text = client.get(f"{url}/metrics").text
            took.append(time.perf_counter() - t0)
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return {
        "series": series,
        "bytes": len(text.encode()),
        "scrape_seconds": round(statistics.median(took), 3),
    }


def open_store(db_path: Path | None, database_url: str | None) -> Any:
    """The monitor's store, opened by the bench to read what the monitor wrote."""
    if database_url:
        from monitor.store.postgres import PostgresStore

        return PostgresStore(database_url)
    from monitor.store.sqlite import SqliteStore

    assert db_path is not None
    return SqliteStore(db_path)


def reconcile_seconds(store: Any, passes: int = 3) -> float:
    """Median wall seconds of one offline reconcile pass over every model, planned (reads
    and decides like the server's pass, writes nothing: the server's own loop is running)."""
    from monitor.kube.offline import offline_target
    from monitor.operator.reconciler import Operator

    operator = Operator(store, offline_target(store))
    operator.plan_once()  # the first pass scores each release gate once; later ones are idle
    took = []
    for _ in range(passes):
        t0 = time.perf_counter()
        operator.plan_once()
        took.append(time.perf_counter() - t0)
    return round(statistics.median(took), 3)


def analysed(store: Any, models: Sequence[str], rows: int) -> dict[str, int]:
    """model -> chunks analysed with every row labelled (`labelled_rows == rows`)."""
    done = {}
    for model in models:
        done[model] = sum(1 for c in store.chunks(model) if c.labelled_rows >= rows)
    return done


def chunk_times(store: Any, models: Sequence[str]) -> dict[tuple[str, int], float]:
    """(model, chunk index) of every stored chunk -> now (the caller keeps the first seen)."""
    now = time.monotonic()
    return {(m, c.chunk_index): now for m in models for c in store.chunks(m)}


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cores": os.cpu_count(), "load_average_1_5_15": [round(x, 2) for x in load]}

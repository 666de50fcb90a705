"""One analysis pass: this replica's share of the models, their pending versions oldest
evidence first, spread over the worker slots.

A pass (`AnalysisDispatcher.__call__`, run by the analysis loop every
`analysis.interval_seconds`):
1. claims this replica's share of the models (`Store.claim_models`, per-model leases in the
   database, `monitor/store/sharing.py`; on SQLite the one replica holds them all); a thread
   renews them every third of `MONITOR_ANALYSIS_LEASE_SECONDS` from the first pass on, also
   while a long unit runs and between passes (a pass interval may exceed the lease);
2. for each model held: its series detail, expired versions' series dropped and its label
   lag published (cheap, here in the server);
3. asks the queue (`monitor.analysis.queue`) which versions have pending work, ordered by the
   age of their oldest pending evidence;
4. runs them on `runner.slots` threads, one per worker slot, each taking the oldest unit whose
   model no other slot is analysing (a version is never analysed by two workers at once, nor
   two versions of one model: they share its candidates and operator state), and skipping
   a model whose lease this replica lost meanwhile (its version series are dropped here:
   the replica that holds it now publishes them).
Units that failed are retried at the next pass. The reconcile pass (the operator's rollbacks)
stays on the one Lease leader (`leadership.py`); the analysis runs on every replica.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

from monitor.analysis.cycle import (
    CycleOptions,
    MetricsSink,
    UnitResult,
    analyse_unit,
    begin_model,
    finish_model,
    publish_label_lag,
)
from monitor.analysis.plan import ChunkPlan
from monitor.analysis.queue import Pending, WorkQueue, next_ready
from monitor.analysis.versions import VersionCache
from monitor.core.evidence import ChunkEvidence
from monitor.store.protocol import Store

log = logging.getLogger("modelguard.monitor")


class UnitRunner(Protocol):
    """Runs one analysis unit on a slot (`worker.AnalysisWorker`, or `InProcess`)."""

    @property
    def slots(self) -> int: ...

    def unit(self, slot: int, model: str, version: str, plan: ChunkPlan) -> UnitResult: ...


class InProcess:
    """One slot in this process (`MONITOR_ANALYSIS_WORKER=false`), with the server's cache."""

    slots = 1

    def __init__(
        self, store: Store, options: CycleOptions, cache: VersionCache, metrics: MetricsSink
    ) -> None:
        self._store, self._options, self._cache, self._metrics = store, options, cache, metrics

    def unit(self, slot: int, model: str, version: str, plan: ChunkPlan) -> UnitResult:
        st, cache, sink = self._store, self._cache, self._metrics
        result = analyse_unit(st, self._options, cache, sink, plan, model, version)
        finish_model(st, cache, sink, model)
        return result


class AnalysisDispatcher:
    """The analysis loop's pass (callable); `close()` gives this replica's leases up."""

    def __init__(
        self,
        store: Store,
        runner: UnitRunner,
        plans: Callable[[], dict[str, ChunkPlan]],
        metrics: MetricsSink,
        *,
        identity: str,
        chunk_size: int,
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.runner = runner
        self.plans = plans
        self.metrics = metrics
        # the process id too: two processes never believe they hold one model
        self.holder = f"{identity}/{os.getpid()}"
        self.default = ChunkPlan(rows=chunk_size)
        self.lease_seconds = lease_seconds
        self.queue = WorkQueue()
        self._lock = threading.Condition()
        self._held: set[str] = set()
        self._claimed_at = 0.0
        self._renewer: threading.Thread | None = None
        self._busy: set[str] = set()  # models a slot is analysing now (kept at a rebalance)
        self._closed = threading.Event()
        self.served: list[tuple[str, str]] = []  # the last pass's units, in serving order

    def start(self) -> None:
        """Claim now and keep renewing in a daemon thread until `close()` (idempotent)."""
        with self._lock:
            if self._renewer is not None:
                return
            self._claim(force=True)
            self._renewer = threading.Thread(target=self._renew, name="analysis-leases")
            self._renewer.daemon = True
            self._renewer.start()

    def _renew(self) -> None:
        while not self._closed.wait(self.lease_seconds / 3):
            try:
                with self._lock:
                    self._claim(force=True)
            except Exception:  # the database is away: the pass itself reports it
                log.debug("renewing the analysis leases failed", exc_info=True)

    def __call__(self) -> list[ChunkEvidence]:
        plans = self.plans()
        self.start()
        with self._lock:
            self._claim(force=True)
        versions = {}
        for model in sorted(self._held):
            versions[model] = begin_model(
                self.store, self.metrics, model, plans.get(model, self.default)
            )
            publish_label_lag(self.store, self.metrics, model)
        waiting = self.queue.pending(self.store, versions, plans)
        produced: list[ChunkEvidence] = []
        busy = self._busy
        self.served = []

        errors: list[Exception] = []

        def slot_loop(slot: int) -> None:
            while True:
                with self._lock:
                    try:
                        unit = self._take(waiting, busy)
                    except Exception as exc:  # the store went away: the loop pauses
                        errors.append(exc)
                        waiting.clear()
                        self._lock.notify_all()
                        return
                    if unit is None:
                        return
                try:
                    plan = plans.get(unit.model, self.default)
                    result = self.runner.unit(slot, unit.model, unit.version, plan)
                except Exception:
                    log.exception("analysis unit %s:%s failed", unit.model, unit.version)
                    result = UnitResult([], failed=True)
                with self._lock:
                    busy.discard(unit.model)
                    self.queue.done(unit.model, unit.version, result)
                    produced.extend(result.evidence)
                    self._lock.notify_all()

        threads = [
            threading.Thread(target=slot_loop, args=(i,), name=f"analysis-slot-{i}", daemon=True)
            for i in range(min(self.runner.slots, max(1, len(waiting))))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return produced

    def _take(self, waiting: list[Pending], busy: set[str]) -> Pending | None:
        """(Under the lock) the next unit for a slot, waiting while only busy models' remain."""
        while waiting:
            self._claim()
            waiting[:] = [p for p in waiting if p.model in self._held]
            unit = next_ready(waiting, busy)
            if unit is not None:
                waiting.remove(unit)
                busy.add(unit.model)
                self.served.append((unit.model, unit.version))
                return unit
            self._lock.wait(1.0)
        return None

    def _claim(self, force: bool = False) -> None:
        """Claim or renew this replica's share (every third of the lease time, or `force`)."""
        if not force and time.monotonic() - self._claimed_at < self.lease_seconds / 3:
            return
        models = sorted(self.store.models(), key=lambda m: (m not in self._busy, m))
        held = set(self.store.claim_models(self.holder, models, self.lease_seconds))
        for lost in sorted(self._held - held):  # another replica publishes them now
            self.metrics.retain_versions(lost, [])
        self._held = held
        self._claimed_at = time.monotonic()

    def close(self) -> None:
        """This replica stops: its models go to the others at their next claim."""
        self._closed.set()
        if self._renewer is not None:
            self._renewer.join(10)
        try:
            self.store.release_models(self.holder)
        except Exception:
            log.warning("releasing the analysis leases failed", exc_info=True)


__all__ = ["AnalysisDispatcher", "InProcess", "UnitRunner"]

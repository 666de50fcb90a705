"""The monitor's periodic work, run in background threads of the server process.

Three loops, started by `monitor.server`: analysis (every `analysis.interval_seconds`, an
`AnalysisDispatcher` pass, `analysis_dispatcher`: this replica's share of the models, their
pending versions oldest evidence first over the worker processes, each model chunked as its
ModelMonitor's spec says: `chunk_plans`; `analysis_pass` is the whole `run_cycle` in this
process, for the CLI and the tests), retention (`Store.expire`
every `store.retention_interval_seconds`) and reconcile (the operator's `reconcile_once` every
`operator.reconcile_interval_seconds`, woken early by a ModelMonitor watch and by fresh
evidence). One failing pass is logged and retried on the next tick; it
never stops the loop. Shutdown sets one event and joins the threads, so a cycle in progress
finishes its current write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from monitor.analysis.cycle import CycleOptions, run_cycle
from monitor.analysis.plan import ChunkPlan
from monitor.analysis.versions import VersionCache
from monitor.core.evidence import ChunkEvidence
from monitor.core.settings import MonitorSettings
from monitor.decision.policy import PolicyError, parse_policy
from monitor.decision.rules import gap_rules
from monitor.kube.watch import start_spec_watch
from monitor.loops.dispatch import AnalysisDispatcher, InProcess, UnitRunner
from monitor.loops.wiring import build_operator, build_target
from monitor.metrics import process as metrics
from monitor.metrics.detail import decided_metrics
from monitor.operator.ports import Target
from monitor.store.protocol import Store
from monitor.store.types import StoreUnavailableError

log = logging.getLogger("modelguard.monitor")


def chunk_plans(monitors: list[dict[str, Any]]) -> dict[str, ChunkPlan]:
    """model -> how to chunk it, from the ModelMonitors' specs (an invalid spec is left out:
    its model keeps the default, and the operator reports the spec as InvalidSpec)."""
    plans: dict[str, ChunkPlan] = {}
    for monitor in monitors:
        try:
            policy = parse_policy(monitor.get("spec") or {})
        except PolicyError:
            continue
        plans[policy.model] = ChunkPlan(
            rows=None if policy.chunk_period else policy.fixed_chunk_rows,
            period=policy.chunk_period,
            anchor=policy.chunk_anchor,
            max_sampling_error=policy.max_sampling_error,
            gaps=gap_rules(policy),
            drift=policy.drift,
            per_feature=policy.per_feature,
            metrics=decided_metrics(
                {policy.gate_metric, policy.estimated_gap_metric, policy.realized_gap_metric}
                | set(policy.estimated_bounds)
                | set(policy.realized_bounds)
            ),
        )
    return plans


class _PlanReader:
    """The plans of the last successful read of the ModelMonitors (an API outage keeps them)."""

    def __init__(self, target: Target | None) -> None:
        self._target = target
        self._plans: dict[str, ChunkPlan] = {}

    def __call__(self) -> dict[str, ChunkPlan]:
        if self._target is None:
            return {}
        try:
            self._plans = chunk_plans(self._target.list_monitors())
        except Exception:
            log.warning("ModelMonitors unreadable; chunking as last read", exc_info=True)
        return self._plans


def analysis_pass(
    store: Store, settings: MonitorSettings, cache: VersionCache | None = None
) -> Callable[[], list[ChunkEvidence]]:
    """A callable running one analysis cycle, each model chunked as its ModelMonitor says.

    `cache` (the fitted calculators per version) is the server's, which its reports use too;
    without one the pass makes its own. With the operator off no ModelMonitor is read: every
    model is chunked by `MONITOR_CHUNK_SIZE` rows.
    """
    fitted = cache if cache is not None else VersionCache.of(store, settings)
    plans = plan_reader(settings, store)
    return lambda: run_cycle(store, CycleOptions.of(settings), fitted, metrics.METRICS, plans())


def analysis_dispatcher(
    store: Store,
    settings: MonitorSettings,
    worker: UnitRunner | None,
    cache: VersionCache | None = None,
) -> AnalysisDispatcher:
    """The analysis loop's pass: this replica's share of the models (per-model leases), their
    pending versions oldest evidence first, over `worker`'s slots (`dispatch.py`); without a
    worker, in this process with `cache`."""
    runner = worker or InProcess(
        store,
        CycleOptions.of(settings),
        cache if cache is not None else VersionCache.of(store, settings),
        metrics.METRICS,
    )
    return AnalysisDispatcher(
        store,
        runner,
        plan_reader(settings, store),
        metrics.METRICS,
        identity=settings.leadership.identity,
        chunk_size=settings.analysis.chunk_size,
        lease_seconds=settings.analysis.lease_seconds,
    )


def plan_reader(settings: MonitorSettings, store: Store) -> Callable[[], dict[str, ChunkPlan]]:
    """model -> ChunkPlan from the ModelMonitors at each call (none with the operator off)."""
    return _PlanReader(build_target(settings, store) if settings.operator.enabled else None)


def retention_pass(store: Store, settings: MonitorSettings) -> Callable[[], Any] | None:
    """A callable deleting what is older than `MONITOR_RETENTION_DAYS` in bounded batches
    (`Store.expire`); None when retention is off (0 days)."""
    if settings.store.retention_days <= 0:
        log.info("MONITOR_RETENTION_DAYS=0: records and labels are kept forever")
        return None
    max_age = settings.store.retention_days * 86_400

    def run() -> Any:
        done = store.expire(max_age, batch_rows=settings.store.retention_batch_rows)
        if done.records or done.orphan_labels:
            log.info(
                "retention: deleted %d records, %d of their labels, %d orphan labels",
                done.records,
                done.labels,
                done.orphan_labels,
            )
        return done

    return run


def reconcile_pass(
    store: Store,
    settings: MonitorSettings,
    wake: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
) -> Callable[[], Any] | None:
    """A callable running one reconcile pass, or None when the operator is switched off.

    With `wake` and `stop`, a watch on ModelMonitors calls `wake` when one appears or its spec
    changes, so the loop reconciles at once (periodic passes still run: level-triggered).
    """
    if not settings.operator.enabled:
        log.info("MONITOR_OPERATOR=false: the operator loop is not started")
        return None
    operator = build_operator(settings, store)
    if wake is not None and stop is not None and start_spec_watch(operator.target, wake, stop):
        log.info("watching ModelMonitors: spec changes reconcile at once")
    return operator.reconcile_once


def waking(work: Callable[[], Any] | None, wake: Callable[[], None]) -> Callable[[], Any] | None:
    """`work`, then `wake()` whenever it produced something: new evidence is decided on at
    once rather than at the reconcile loop's next tick."""
    if work is None:
        return None

    def run() -> Any:
        produced = work()
        if produced:
            wake()
        return produced

    return run


class BackgroundLoops:
    """Periodic passes in daemon threads with one shared stop event."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._wakes: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self.passes: dict[str, int] = {}
        self.failures: dict[str, int] = {}

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def waker(self, name: str) -> Callable[[], None]:
        """A callable that makes loop `name` run its next pass now instead of after its wait."""
        return self._wakes.setdefault(name, threading.Event()).set

    def _sleep(self, name: str, seconds: float) -> bool:
        """Wait `seconds` or until woken; True when the loops are stopping."""
        wake = self._wakes.setdefault(name, threading.Event())
        wake.wait(seconds)
        wake.clear()
        return self._stop.is_set()

    def start(
        self, name: str, factory: Callable[[], Callable[[], Any] | None], interval_seconds: float
    ) -> None:
        """After one interval, run `factory()` in the thread (imports can be slow), then its
        result every interval. A loop whose interval never elapses never imports anything."""
        thread = threading.Thread(
            target=self._run, args=(name, factory, interval_seconds), name=name, daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _run(
        self, name: str, factory: Callable[[], Callable[[], Any] | None], interval_seconds: float
    ) -> None:
        if self._sleep(name, interval_seconds):  # first pass after one interval, like the rest
            return
        try:
            work = factory()
        except Exception:
            log.exception("%s could not start", name)
            return
        if work is None:
            return
        paused = False  # the database is away: logged once, not at every tick
        while True:
            try:
                work()
                self.passes[name] = self.passes.get(name, 0) + 1
                if paused:
                    paused = False
                    metrics.set_store_up(True)
                    log.info("%s resumed: the database is reachable again", name)
            except StoreUnavailableError as exc:
                self.failures[name] = self.failures.get(name, 0) + 1
                metrics.set_store_up(False)
                if not paused:
                    paused = True
                    log.warning("%s paused: %s (retrying every %.0fs)", name, exc, interval_seconds)
            except Exception:
                self.failures[name] = self.failures.get(name, 0) + 1
                log.exception("%s pass failed; retrying in %.0fs", name, interval_seconds)
            if self._sleep(name, interval_seconds):
                return

    def stop(self, timeout_seconds: float = 30.0) -> None:
        self._stop.set()
        for wake in self._wakes.values():
            wake.set()
        for thread in self._threads:
            thread.join(timeout_seconds)
            if thread.is_alive():
                log.warning("%s did not stop within %.0fs", thread.name, timeout_seconds)
        self._threads.clear()

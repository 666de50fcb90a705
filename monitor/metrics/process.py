"""The process-wide `METRICS` and the module-level functions that write to it.

The API, the loops and the server call these (`records_ingested`, `auth_refused`,
`set_leader`, ...); analysis and the operator are handed `METRICS` itself (their protocols:
`cycle.MetricsSink`, `operator.ports.OperatorMetrics`). Tests swap `METRICS` for a fresh
`MonitorMetrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from monitor.core.evidence import ChunkEvidence
from monitor.core.gap import GapSummary
from monitor.metrics.registry import MonitorMetrics

METRICS = MonitorMetrics()


def publish_chunk(evidence: ChunkEvidence) -> None:
    METRICS.publish_chunk(evidence)


def publish_cumulative(
    model: str, version: str, estimated: GapSummary, realized_gap: float | None
) -> None:
    METRICS.publish_cumulative(model, version, estimated, realized_gap)


def record_rollback(namespace: str, modelmonitor: str, trigger: str, mode: str) -> None:
    METRICS.record_rollback(namespace, modelmonitor, trigger, mode)


def init_rollbacks(namespace: str, modelmonitor: str, triggers: tuple[str, ...], mode: str) -> None:
    METRICS.init_rollbacks(namespace, modelmonitor, triggers, mode)


def set_condition(namespace: str, modelmonitor: str, type: str, status: bool) -> None:
    METRICS.set_condition(namespace, modelmonitor, type, status)


def observe_analysis(duration_seconds: float, ok: bool, model: str | None = None) -> None:
    METRICS.observe_analysis(duration_seconds, ok, model)


def forget_version(model: str, version: str) -> int:
    return METRICS.forget_version(model, version)


def reconcile_error(namespace: str, modelmonitor: str) -> None:
    METRICS.reconcile_error(namespace, modelmonitor)


def set_label_lag(model: str, seconds: float) -> None:
    METRICS.set_label_lag(model, seconds)


def set_leader(leading: bool) -> None:
    """`modelguard_monitor_leader`: 1 while this replica does the periodic work."""
    METRICS.leader.set(1 if leading else 0)


def set_store_up(up: bool) -> None:
    """`modelguard_monitor_store_up`: 0 while the database is unreachable."""
    METRICS.store_up.set(1 if up else 0)


def records_ingested(model: str, version: str, count: int) -> None:
    METRICS.child(METRICS.records_ingested, model, version).inc(count)
    METRICS.last_record_timestamp.labels(model).set(time.time())


def records_rejected(reason: str, count: int) -> None:
    METRICS.records_rejected.labels(reason).inc(count)


def auth_refused(role: str, code: int) -> None:
    METRICS.auth_refused.labels(role, str(code)).inc()


def labels_ingested(model: str, count: int) -> None:
    METRICS.labels_ingested.labels(model).inc(count)


def labels_joined(model: str, count: int) -> None:
    METRICS.labels_joined.labels(model).inc(count)


def count_calculator_fits(
    count: Callable[[], int] | None, loads: Callable[[], int] | None = None
) -> None:
    """Report `count()` (the server's `VersionCache.fits`) as the fits counter and `loads()`
    (its `.loads`) as the loads counter; None detaches."""
    METRICS.calculator_fits.count = count
    METRICS.calculator_fits.loads = loads

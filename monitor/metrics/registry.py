"""`MonitorMetrics`: every metric of the contract (docs/contracts.md §6) on its own registry.

Its own `CollectorRegistry`, not the global one, so `/metrics` shows exactly the series this
package documents and tests can build a fresh instance. Series of a version that is no longer
live are removed with `forget_version`, so superseded versions do not linger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from monitor.core.evidence import ChunkEvidence
from monitor.core.gap import GapSummary
from monitor.decision.candidates import CandidateVerdict
from monitor.memory.state import ChunkingStatus
from monitor.metrics.candidates import CandidateMetrics
from monitor.metrics.chunk import publish
from monitor.metrics.detail import Detail
from monitor.metrics.fits import CalculatorFits

MV = ("model", "version")
ANALYSIS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class MonitorMetrics:
    """Every metric of the contract, plus helpers that keep track of live label sets."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        # metric -> label tuples set so far, so a version's series can be removed later
        self._children: dict[Any, set[tuple[str, ...]]] = {}
        g, c, r = self._gauge, self._counter, self.registry
        perf = (*MV, "metric", "segment")
        self.estimated = g("modelguard_estimated_performance", "CBPE estimate", perf)
        self.estimated_lower = g(
            "modelguard_estimated_performance_lower", "Lower confidence bound", perf
        )
        self.estimated_upper = g(
            "modelguard_estimated_performance_upper", "Upper confidence bound", perf
        )
        self.estimated_alert = g(
            "modelguard_estimated_performance_alert",
            "1 when the estimate is outside NannyML's thresholds",
            (*MV, "metric"),
        )
        self.realized = g("modelguard_realized_performance", "On labelled rows", perf)
        mvm = (*MV, "metric")
        self.realized_error = g(
            "modelguard_realized_performance_sampling_error",
            "Sampling error of the realized figure on its labelled rows (the estimates' formula)",
            mvm,
        )
        self.interval_lower = g(
            "modelguard_estimated_performance_interval_lower",
            "Lower end of the calibrated interval at the stated level",
            mvm,
        )
        self.interval_upper = g(
            "modelguard_estimated_performance_interval_upper",
            "Upper end of the calibrated interval at the stated level",
            mvm,
        )
        self.interval_level = g(
            "modelguard_estimate_interval_level", "Stated coverage of the intervals", MV
        )
        self.nowcast = g(
            "modelguard_nowcast_performance",
            "Best current estimate: labelled rows with labels, the rest calibrated",
            mvm,
        )
        self.nowcast_lower = g(
            "modelguard_nowcast_performance_lower", "Lower end of the nowcast's interval", mvm
        )
        self.nowcast_upper = g(
            "modelguard_nowcast_performance_upper", "Upper end of the nowcast's interval", mvm
        )
        self.estimate_abs_error = g(
            "modelguard_estimate_abs_error",
            "Mean |realized - estimated| over the version's last labelled chunks",
            mvm,
        )
        self.estimate_bias = g(
            "modelguard_estimate_bias",
            "Mean (realized - estimated) over the version's last labelled chunks",
            mvm,
        )
        self.interval_coverage = g(
            "modelguard_estimate_interval_coverage_ratio",
            "Share of the last labelled chunks whose realized value was inside the interval",
            mvm,
        )
        self.band_coverage = g(
            "modelguard_estimate_band_coverage_ratio",
            "The same for NannyML's +-3 sampling-error band (comparison)",
            mvm,
        )
        self.track_record_chunks = g(
            "modelguard_estimate_track_record_chunks",
            "Labelled chunks the track record covers (with an interval)",
            mvm,
        )
        self.known_good_estimated = g(
            "modelguard_known_good_estimated_performance",
            "CBPE of the known-good version re-scored on the live version's rows",
            (*MV, "metric"),
        )
        self.estimated_gap = g(
            "modelguard_estimated_gap_cumulative",
            "Cumulative estimated gap (live - known-good) since the release",
            MV,
        )
        self.estimated_gap_lower = g(
            "modelguard_estimated_gap_cumulative_lower",
            "Lower end of the cumulative estimated gap's band (t interval over its chunks)",
            MV,
        )
        self.estimated_gap_upper = g(
            "modelguard_estimated_gap_cumulative_upper",
            "Upper end of the cumulative estimated gap's band (t interval over its chunks)",
            MV,
        )
        self.estimated_gap_rows = g(
            "modelguard_estimated_gap_rows", "Rows behind the cumulative estimated gap", MV
        )
        self.estimated_gap_chunks = g(
            "modelguard_estimated_gap_chunks", "Chunks behind the cumulative estimated gap", MV
        )
        self.realized_gap = g(
            "modelguard_realized_gap_cumulative",
            "Cumulative realized gap (live - known-good) since the release",
            MV,
        )
        self.rank_correlation = g(
            "modelguard_rank_correlation", "Spearman of live vs known-good scores", MV
        )
        self.rank_correlation_floor = g(
            "modelguard_rank_correlation_floor", "Lowest expected rank correlation", MV
        )
        self.parity_violation = g(
            "modelguard_score_parity_violation_ratio",
            "Share of rows whose served score differs from the version's own re-score",
            MV,
        )
        drift = (*MV, "feature", "method")
        self.feature_drift = g("modelguard_feature_drift", "Univariate drift statistic", drift)
        self.feature_drift_alert = g(
            "modelguard_feature_drift_alert", "1 when the drift is past its threshold", drift
        )
        self.feature_drift_importance = g(
            "modelguard_feature_drift_importance",
            "Rank score: drift tracking the estimated drop, weighted by the model's reliance"
            " on the feature (feature importance without attributions)",
            (*MV, "feature"),
        )
        self.attribution = g(
            "modelguard_feature_attribution",
            "Mean |TreeSHAP contribution| (log-odds) of the feature on the latest chunk",
            (*MV, "feature"),
        )
        self.attribution_reference = g(
            "modelguard_feature_attribution_reference",
            "Mean |TreeSHAP contribution| (log-odds) of the feature on the version's reference",
            (*MV, "feature"),
        )
        self.attribution_shift = g(
            "modelguard_feature_attribution_shift",
            "(latest - reference attribution) / the reference's total attribution",
            (*MV, "feature"),
        )
        self.multivariate_error = g(
            "modelguard_multivariate_drift_error", "PCA reconstruction error", MV
        )
        self.multivariate_threshold = g(
            "modelguard_multivariate_drift_threshold", "Reconstruction error threshold", MV
        )
        self.multivariate_alert = g(
            "modelguard_multivariate_drift_alert", "1 when past the threshold", MV
        )
        self.missing_ratio = g(
            "modelguard_data_missing_ratio", "Share of missing values", (*MV, "feature")
        )
        self.out_of_range_ratio = g(
            "modelguard_data_out_of_range_ratio",
            "Share of present values outside the expected range (served) or an unknown category",
            (*MV, "feature"),
        )
        self.records_ingested = c("modelguard_records_ingested", "Inference records stored", MV)
        self.records_rejected = c(
            "modelguard_records_rejected", "Inference records refused", ("reason",)
        )
        self.auth_refused = c(
            "modelguard_auth_refused",
            "Requests refused for their bearer token (role: the role the route needs)",
            ("role", "code"),
        )
        self.labels_ingested = c("modelguard_labels_ingested", "Labels stored", ("model",))
        self.labels_joined = c(
            "modelguard_labels_joined", "Labels matched to a stored record", ("model",)
        )
        self.label_lag = g(
            "modelguard_label_lag_seconds",
            "Age of the oldest unlabelled record in analysed chunks",
            ("model",),
        )
        self.unlabelled_ratio = g(
            "modelguard_unlabelled_ratio", "Share of analysed rows without a label", MV
        )
        self.last_record_timestamp = g(
            "modelguard_last_record_timestamp_seconds",
            "When the newest record was stored (wall clock)",
            ("model",),
        )
        self.analysis_duration = Histogram(
            "modelguard_analysis_duration_seconds",
            "Duration of one analysis cycle",
            registry=r,
            buckets=ANALYSIS_BUCKETS,
        )
        self.analysis_failures = c("modelguard_analysis_failures", "Failed analyses", ("model",))
        self.last_successful_analysis = Gauge(
            "modelguard_last_successful_analysis_timestamp_seconds",
            "When the last analysis cycle succeeded",
            registry=r,
        )
        self.chunks_analysed = c("modelguard_chunks_analysed", "Chunks analysed", MV)
        self.chunk_rows = g(
            "modelguard_chunk_rows",
            "Rows one chunk holds (by rows), or the derived rows within the sampling-error"
            " bound (by period)",
            MV,
        )
        self.chunk_rows_pending = g(
            "modelguard_chunk_rows_pending", "Stored rows waiting for a complete chunk", MV
        )
        self.chunk_rows_needed = g(
            "modelguard_chunk_rows_needed", "Rows still missing before the next chunk", MV
        )
        self.rollbacks = c(
            "modelguard_rollbacks",
            "Rollbacks decided (mode=dryRun: only recorded)",
            ("namespace", "modelmonitor", "trigger", "mode"),
        )
        self.condition = g(
            "modelguard_condition",
            "ModelMonitor status condition (1 = True)",
            ("namespace", "modelmonitor", "type"),
        )
        self.reconcile_errors = c(
            "modelguard_reconcile_errors", "Failed reconciliations", ("namespace", "modelmonitor")
        )
        self.leader = Gauge(
            "modelguard_monitor_leader",
            "1 while this replica holds the leader Lease (always 1 without leader election)",
            registry=r,
        )
        self.store_up = Gauge(
            "modelguard_monitor_store_up",
            "0 while this replica cannot reach its database (readiness and each request)",
            registry=r,
        )
        self.store_up.set(1)
        self.calculator_fits = CalculatorFits()
        r.register(self.calculator_fits)
        self.candidates = CandidateMetrics(self.registry)
        # model -> export detail (spec.metrics, set by the analysis loop); others: the default
        self.detail: dict[str, Detail] = {}

    def _gauge(self, name: str, doc: str, labels: Iterable[str]) -> Gauge:
        return Gauge(name, doc, list(labels), registry=self.registry)

    def _counter(self, name: str, doc: str, labels: Iterable[str]) -> Counter:
        return Counter(name, doc, list(labels), registry=self.registry)

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembering the label set for `forget_version`."""
        with self._lock:
            self._children.setdefault(metric, set()).add(labels)
        return metric.labels(*labels)

    def set_or_clear(self, metric: Any, value: float | None, *labels: str) -> None:
        """Set a gauge, or remove its series when the value is unknown (no stale numbers)."""
        if value is None:
            with self._lock:
                known = labels in self._children.get(metric, set())
                self._children.get(metric, set()).discard(labels)
            if known:
                metric.remove(*labels)
            return
        self.child(metric, *labels).set(float(value))

    def forget_version(self, model: str, version: str) -> int:
        """Remove every series labelled with this model version, its candidate series
        included; returns how many."""
        removed = self.candidates.forget(model, version)
        with self._lock:
            for metric, label_sets in self._children.items():
                names = list(metric._labelnames)
                if names[:2] != ["model", "version"]:
                    continue
                for labels in [s for s in label_sets if s[:2] == (model, version)]:
                    metric.remove(*labels)
                    label_sets.discard(labels)
                    removed += 1
        return removed

    def retain_versions(self, model: str, versions: Sequence[str]) -> int:
        """Forget every version of `model` not in `versions` (gone from the store: expired
        by retention or deleted), so its series do not outlive it; returns how many. Only
        versions the analysis published count: a declared candidate's own series follow its
        declaration (`CandidateMetrics.publish`)."""
        keep = set(versions)
        with self._lock:
            known = {
                labels[1]
                for metric, label_sets in self._children.items()
                if list(metric._labelnames)[:2] == ["model", "version"]
                for labels in label_sets
                if labels[0] == model
            }
        return sum(self.forget_version(model, v) for v in sorted(known - keep))

    def set_detail(self, model: str, per_feature: bool, metrics: frozenset[str]) -> None:
        """How much `model` exports (spec.metrics); applied from its next chunk on."""
        self.detail[model] = Detail(per_feature, frozenset(metrics))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # -- publishers ------------------------------------------------------------------------

    def publish_chunk(self, ev: ChunkEvidence) -> None:
        """The latest chunk's evidence as the version's current series (`chunk.publish`)."""
        publish(self, ev)

    def publish_cumulative(
        self, model: str, version: str, estimated: GapSummary, realized_gap: float | None
    ) -> None:
        """The same-rows gaps since the release; the estimated one with its band and the
        rows and chunks behind it (what the progressive-delivery templates gate on)."""
        known = estimated.gap is not None
        self.set_or_clear(self.estimated_gap, estimated.gap, model, version)
        self.set_or_clear(self.estimated_gap_lower, estimated.lower, model, version)
        self.set_or_clear(self.estimated_gap_upper, estimated.upper, model, version)
        self.set_or_clear(
            self.estimated_gap_rows, estimated.rows if known else None, model, version
        )
        self.set_or_clear(
            self.estimated_gap_chunks, estimated.chunks if known else None, model, version
        )
        self.set_or_clear(self.realized_gap, realized_gap, model, version)

    def publish_chunking(self, model: str, version: str, status: ChunkingStatus) -> None:
        """How the version is chunked and what waits for a chunk (after every cycle)."""
        self.set_or_clear(self.chunk_rows, status.basis_rows, model, version)
        self.child(self.chunk_rows_pending, model, version).set(status.pending_rows)
        self.child(self.chunk_rows_needed, model, version).set(status.rows_needed)

    def record_rollback(self, namespace: str, modelmonitor: str, trigger: str, mode: str) -> None:
        self.rollbacks.labels(namespace, modelmonitor, trigger, mode).inc()

    def publish_candidates(self, model: str, verdicts: Sequence[CandidateVerdict]) -> None:
        self.candidates.publish(model, verdicts)

    def set_label_lag(self, model: str, seconds: float) -> None:
        self.label_lag.labels(model).set(seconds)

    def init_rollbacks(
        self, namespace: str, modelmonitor: str, triggers: tuple[str, ...], mode: str
    ) -> None:
        """Create each (trigger, mode) series at 0: `increase()` cannot see a counter's first
        sample, so a rollback counted on a brand-new series would never alert."""
        for trigger in triggers:
            self.rollbacks.labels(namespace, modelmonitor, trigger, mode)

    def set_condition(self, namespace: str, modelmonitor: str, type_: str, status: bool) -> None:
        self.condition.labels(namespace, modelmonitor, type_).set(1 if status else 0)

    def reconcile_error(self, namespace: str, modelmonitor: str) -> None:
        self.reconcile_errors.labels(namespace, modelmonitor).inc()

    def observe_analysis(self, duration_seconds: float, ok: bool, model: str | None = None) -> None:
        self.analysis_duration.observe(duration_seconds)
        if ok:
            self.last_successful_analysis.set(time.time())
        else:
            self.analysis_failures.labels(model or "").inc()

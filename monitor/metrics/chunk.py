"""Publishing one chunk's evidence: the version's current series, bounded by its detail.

Its own module so the registry stays the list of metrics. `publish` writes every series of
the evidence through one predicate, `_Selection.wants` (the bounded default of
monitor/metrics/detail.py, or every feature and metric), and then removes the version's
series the predicate no longer wants (a feature that left its top k, per-feature turned
off), so a version's series count stays bounded over time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.core.evidence import ChunkEvidence, Estimate
from monitor.metrics.detail import Detail, Features, keeps

if TYPE_CHECKING:
    from monitor.metrics.registry import MonitorMetrics


@dataclass(frozen=True)
class _Selection:
    """Which (metric, labels) of one version the chunk exports."""

    m: MonitorMetrics
    detail: Detail
    features: Features

    def wants(self, metric: Any, labels: tuple[str, ...]) -> bool:
        m, full = self.m, self.detail.per_feature
        if full:
            return True
        by_feature = {
            m.feature_drift: self.features.drift,
            m.feature_drift_alert: self.features.drift,
            m.feature_drift_importance: self.features.drift,
            m.attribution: self.features.reliance,
            m.attribution_shift: self.features.reliance,
            m.missing_ratio: self.features.missing,
            m.out_of_range_ratio: self.features.out_of_range,
        }
        if metric in by_feature:
            # one statistic per feature (the one every kind has); alerts for every method
            method_ok = metric is not m.feature_drift or labels[3] == "jensen_shannon"
            return method_ok and keeps(by_feature[metric], labels[2])
        # per-feature or comparison-only series: with spec.metrics.perFeature only
        if metric in (m.attribution_reference, m.nowcast_lower, m.nowcast_upper):
            return False
        if metric is m.band_coverage:
            return False
        if metric in (m.estimated_lower, m.estimated_upper) and labels[3] != "all":
            return False  # a segment's band
        names = list(metric._labelnames)
        return not (len(names) > 2 and names[2] == "metric") or self.detail.metric(labels[2])

    def put(self, metric: Any, value: float | None, *labels: str) -> None:
        """Set the series if wanted, else (or when the value is unknown) remove it."""
        self.m.set_or_clear(metric, value if self.wants(metric, labels) else None, *labels)


def _estimates(s: _Selection, mv: tuple[str, str], est: dict[str, Estimate], seg: str) -> None:
    for metric, e in est.items():
        s.put(s.m.estimated, e.value, *mv, metric, seg)
        s.put(s.m.estimated_lower, e.lower, *mv, metric, seg)
        s.put(s.m.estimated_upper, e.upper, *mv, metric, seg)


def publish(m: MonitorMetrics, ev: ChunkEvidence) -> None:
    """Make the latest chunk's evidence the current value of the version's series: the
    bounded default set unless the model's ModelMonitor asks for every feature."""
    mv = (ev.model, ev.version)
    detail = m.detail.get(ev.model, Detail())
    s = _Selection(m, detail, Features.of(ev, detail))
    put = s.put
    _estimates(s, mv, ev.estimated, "all")
    for metric, e in ev.estimated.items():
        put(m.estimated_alert, 1 if e.alert else 0, *mv, metric)
    for metric, value in ev.realized.items():
        put(m.realized, value, *mv, metric, "all")
    for metric, error in ev.realized_sampling_error.items():
        put(m.realized_error, error, *mv, metric)
    _intervals(s, mv, ev)
    for seg in ev.segments:
        _estimates(s, mv, seg.estimated, seg.segment)
        for metric, value in seg.realized.items():
            put(m.realized, value, *mv, metric, seg.segment)
    for metric, e in ev.known_good_estimated.items():
        put(m.known_good_estimated, e.value, *mv, metric)
    put(m.rank_correlation, ev.rank_correlation, *mv)
    put(m.rank_correlation_floor, ev.rank_correlation_floor, *mv)
    put(m.parity_violation, ev.parity_violation_ratio, *mv)
    for d in ev.drift:
        put(m.feature_drift, d.value, *mv, d.feature, d.method)
        # An ignored series (spec.drift.features) has no alert series at all, so no
        # alert rule can fire on it; one left from before the setting is removed.
        put(m.feature_drift_alert, None if d.ignored else float(d.alert), *mv, d.feature, d.method)
    for feature, score in ev.drift_ranking:
        put(m.feature_drift_importance, score, *mv, feature)
    for feature, setting in ev.drift_settings.items():
        if setting.get("ignore"):
            put(m.feature_drift_importance, None, *mv, feature)
    for gauge, values in (
        (m.attribution, ev.reliance),
        (m.attribution_reference, ev.reference_reliance),
        (m.attribution_shift, ev.attribution_shift),
        (m.missing_ratio, ev.missing_ratio),
        (m.out_of_range_ratio, ev.out_of_range_ratio),
    ):
        for feature, v in values.items():
            put(gauge, v, *mv, feature)
    put(m.multivariate_error, ev.multivariate_error, *mv)
    put(m.multivariate_threshold, ev.multivariate_threshold, *mv)
    put(m.multivariate_alert, int(ev.multivariate_alert), *mv)
    if ev.rows:
        put(m.unlabelled_ratio, (ev.rows - ev.labelled_rows) / ev.rows, *mv)
    m.child(m.chunks_analysed, *mv).inc()
    _prune(s, mv)


def _intervals(s: _Selection, mv: tuple[str, str], ev: ChunkEvidence) -> None:
    """Calibrated intervals, the nowcast and the track record of the chunk's version."""
    m, put = s.m, s.put
    for metric, e in ev.estimated.items():
        put(m.interval_lower, e.interval_lower, *mv, metric)
        put(m.interval_upper, e.interval_upper, *mv, metric)
        if e.interval_level is not None:
            put(m.interval_level, e.interval_level, *mv)
    for metric, e in ev.nowcast.items():
        put(m.nowcast, e.value, *mv, metric)
        put(m.nowcast_lower, e.interval_lower, *mv, metric)
        put(m.nowcast_upper, e.interval_upper, *mv, metric)
    for metric, t in ev.track_record.items():
        put(m.estimate_abs_error, t.mae, *mv, metric)
        put(m.estimate_bias, t.bias, *mv, metric)
        put(m.interval_coverage, t.interval_coverage, *mv, metric)
        put(m.band_coverage, t.band_coverage, *mv, metric)
        put(m.track_record_chunks, t.interval_chunks, *mv, metric)


def _prune(s: _Selection, mv: tuple[str, str]) -> None:
    """Remove the version's series the selection no longer wants (ones it had before)."""
    with s.m._lock:
        for metric, label_sets in s.m._children.items():
            for labels in [x for x in label_sets if x[:2] == mv and not s.wants(metric, x)]:
                metric.remove(*labels)
                label_sets.discard(labels)

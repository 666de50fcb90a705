"""Which per-feature and per-metric series a model version exports (bounded by default).

Why: every feature times every drift method, attribution and data-quality ratio, times every
performance metric, made ~200 series per model version; hundreds of models on one monitor
made one scrape target of tens of thousands of series. By default a version exports, per
concern, only its top `TOP_K` features (the most drifting by the drift ranking, the most
relied on, the most missing, the most out of range) and only the performance metrics its
ModelMonitor decides on; `spec.metrics.perFeature: true` exports every feature and metric.
The series names stay the same, so alert rules and dashboards read either set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitor.core.evidence import ChunkEvidence

TOP_K = 3
DEFAULT_METRICS = frozenset({"roc_auc"})


@dataclass(frozen=True)
class Detail:
    """A model's export detail: every feature and metric, or the bounded default."""

    per_feature: bool = False
    metrics: frozenset[str] = DEFAULT_METRICS  # performance metrics exported by default

    def metric(self, name: str) -> bool:
        return self.per_feature or name in self.metrics


@dataclass(frozen=True)
class Features:
    """The features whose series one chunk exports, per concern (None: every feature)."""

    drift: frozenset[str] | None = None
    reliance: frozenset[str] | None = None
    missing: frozenset[str] | None = None
    out_of_range: frozenset[str] | None = None

    @classmethod
    def of(cls, ev: ChunkEvidence, detail: Detail) -> Features:
        if detail.per_feature:
            return cls()
        ranking = dict(ev.drift_ranking)
        drifting = {d.feature: ranking.get(d.feature, -1.0) for d in ev.drift if not d.ignored}
        return cls(
            drift=_top(drifting),
            reliance=_top(ev.reliance or ev.reference_reliance),
            missing=_top(ev.missing_ratio),
            out_of_range=_top(ev.out_of_range_ratio),
        )


def _top(scores: Mapping[str, float]) -> frozenset[str]:
    """The `TOP_K` highest-scoring features; ties broken by name so the set is stable."""
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return frozenset(feature for feature, _ in ranked[:TOP_K])


def keeps(selected: frozenset[str] | None, feature: str) -> bool:
    return selected is None or feature in selected


def decided_metrics(names: Iterable[str]) -> frozenset[str]:
    """The metrics a ModelMonitor decides on (gates, gaps, bounds), roc_auc always among them."""
    return DEFAULT_METRICS | frozenset(names)

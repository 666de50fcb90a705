"""Plain data passed from analysis to the decision and to metrics: no I/O, no NannyML types.

Analysis (`monitor/analysis/chunks.py`, `shadow.py`) produces one `ChunkEvidence` per
completed chunk of a model version; the store persists it (as JSON via `to_dict`); the
decision (`monitor/decision/`) reads sequences of them; metrics publish the latest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Estimate:
    """A performance figure with its confidence band and NannyML's own alert flag.

    `lower`/`upper` are NannyML's +-3 sampling errors (kept for comparison); `interval_*` is
    the interval calibrated on observed errors at `interval_level` (monitor/analysis/intervals.py).
    """

    value: float | None
    lower: float | None = None
    upper: float | None = None
    sampling_error: float | None = None
    lower_threshold: float | None = None
    upper_threshold: float | None = None
    alert: bool = False
    interval_lower: float | None = None
    interval_upper: float | None = None
    interval_level: float | None = None


@dataclass(frozen=True)
class TrackRecord:
    """How wrong a version's label-free estimates have been, over its last labelled chunks."""

    metric: str
    chunks: int  # labelled chunks compared
    mae: float  # mean |realized - estimate|
    bias: float  # mean (realized - estimate): > 0, the estimate is pessimistic
    level: float  # the intervals' stated coverage
    interval_coverage: float | None  # share of chunks whose realized value was inside
    interval_chunks: int = 0  # chunks that had an interval
    band_coverage: float | None = None  # the same for NannyML's +-3 sampling-error band


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: str  # "kolmogorov_smirnov" | "jensen_shannon" | "chi2"
    value: float
    threshold: float | None
    alert: bool
    # spec.drift.features turned this series' alert off (the feature is ignored, or another
    # of its methods is the one that counts): never an alert, never an alert series.
    ignored: bool = False


@dataclass(frozen=True)
class SegmentEvidence:
    """The same estimates restricted to one value of the schema's segment column."""

    segment: str
    rows: int
    estimated: dict[str, Estimate] = field(default_factory=dict)
    realized: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkEvidence:
    """Everything measured on one chunk of consecutive records of one model version."""

    model: str
    version: str
    chunk_index: int  # 0-based, per version: arrival order by rows, period order by period
    rows: int
    first_seq: int  # store sequence numbers bounding the chunk (inclusive)
    last_seq: int
    start_time: str  # ISO-8601 of the first and last record's timestamp
    end_time: str
    # NannyML CBPE on the served scores, keyed by metric: roc_auc, f1, precision, recall.
    estimated: dict[str, Estimate] = field(default_factory=dict)
    # Realized performance on the rows whose labels have arrived (None until both classes
    # are among them), and its sampling error: the formula of the estimates' (NannyML's
    # reference std / sqrt(labelled rows * fraction)), at the labelled rows.
    realized: dict[str, float | None] = field(default_factory=dict)
    labelled_rows: int = 0
    realized_sampling_error: dict[str, float | None] = field(default_factory=dict)
    # A chunk by event-time period: its period [period_start, period_end) (RFC 3339), and
    # whether the version's rows cover only part of it (its first or last period); both
    # empty / False for chunks by rows.
    period_start: str = ""
    period_end: str = ""
    partial: bool = False
    # Drift and data quality: diagnosis only, never a rollback trigger by themselves.
    drift: list[FeatureDrift] = field(default_factory=list)
    multivariate_error: float | None = None
    multivariate_threshold: float | None = None
    multivariate_alert: bool = False
    missing_ratio: dict[str, float] = field(default_factory=dict)
    out_of_range_ratio: dict[str, float] = field(default_factory=dict)
    # Features ranked by how their drift tracks the estimated drop, weighted by the model's
    # reliance on them in this chunk (its feature importance when there are no attributions).
    drift_ranking: list[tuple[str, float]] = field(default_factory=list)
    # Attributions (monitor/analysis/attribution.py): mean |TreeSHAP contribution| per
    # feature in log-odds on `attribution_rows` sampled rows of the chunk, the same on the
    # version's reference, and the shift between them (share of the total reference reliance).
    reliance: dict[str, float] = field(default_factory=dict)
    reference_reliance: dict[str, float] = field(default_factory=dict)
    attribution_shift: dict[str, float] = field(default_factory=dict)
    attribution_rows: int = 0
    # Mean estimated ROC AUC of the version's reference chunks: what a change is measured from.
    reference_roc_auc: float | None = None
    segments: list[SegmentEvidence] = field(default_factory=list)
    # Shadow re-scoring with the version's own artifact: training/serving skew.
    parity_violation_ratio: float | None = None  # share of rows whose |served - own| > tol
    # Shadow re-scoring with the last known-good version's artifact, on the same rows.
    known_good_version: str | None = None
    same_learner: bool | None = None
    rank_correlation: float | None = None  # Spearman, live vs known-good scores
    rank_correlation_floor: float | None = None  # reference mean - 3 sd (chunks of this size)
    known_good_estimated: dict[str, Estimate] = field(default_factory=dict)
    known_good_realized: dict[str, float | None] = field(default_factory=dict)
    # Best current estimate: labelled rows with their labels, the others with calibrated
    # scores (converges to realized). Decisions read `estimated`, never this.
    nowcast: dict[str, Estimate] = field(default_factory=dict)
    # The version's track record as the analysis knew it when it analysed this chunk.
    track_record: dict[str, TrackRecord] = field(default_factory=dict)
    analysed_at: str = ""
    # The ModelMonitor's per-feature drift settings this chunk was analysed under, in the
    # spec's spelling (monitor.core.drift_settings), each with `referenceThreshold` (what a
    # threshold of its own replaced) where it has one.
    drift_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        return sorted({d.feature for d in self.drift if d.alert and not d.ignored})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkEvidence:
        d = dict(data)
        d["estimated"] = {k: Estimate(**v) for k, v in d.get("estimated", {}).items()}
        d["known_good_estimated"] = {
            k: Estimate(**v) for k, v in d.get("known_good_estimated", {}).items()
        }
        d["nowcast"] = {k: Estimate(**v) for k, v in d.get("nowcast", {}).items()}
        d["track_record"] = {k: TrackRecord(**v) for k, v in d.get("track_record", {}).items()}
        d["drift"] = [FeatureDrift(**x) for x in d.get("drift", [])]
        d["drift_ranking"] = [tuple(x) for x in d.get("drift_ranking", [])]
        d["segments"] = [
            SegmentEvidence(
                segment=s["segment"],
                rows=s["rows"],
                estimated={k: Estimate(**v) for k, v in s.get("estimated", {}).items()},
                realized=s.get("realized", {}),
            )
            for s in d.get("segments", [])
        ]
        return cls(**d)

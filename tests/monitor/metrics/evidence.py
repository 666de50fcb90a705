"""A realistic chunk's evidence for counting series: the weather model's shape (10 features)."""

from __future__ import annotations

from monitor.core.evidence import (
    ChunkEvidence,
    Estimate,
    FeatureDrift,
    SegmentEvidence,
    TrackRecord,
)

CONTINUOUS = ("temp", "humidity", "pressure", "wind_speed", "wind_gust", "dew_point", "visib")
CATEGORICAL = ("origin", "month", "hour")
FEATURES = CONTINUOUS + CATEGORICAL
METRICS = ("roc_auc", "f1", "precision", "recall")


def realistic(model: str = "rain", version: str = "v1") -> ChunkEvidence:
    """Every field the analysis fills for a 10-feature model: both drift methods per feature,
    attributions, data quality, intervals, nowcast, track record and one segment."""
    drift = [
        FeatureDrift(f, m, 0.05 * (i + 1), 0.1, 0.05 * (i + 1) > 0.1)
        for i, f in enumerate(FEATURES)
        for m in (
            ("kolmogorov_smirnov", "jensen_shannon")
            if f in CONTINUOUS
            else ("chi2", "jensen_shannon")
        )
    ]
    est = {
        m: Estimate(0.8, 0.75, 0.85, alert=False, interval_lower=0.74, interval_upper=0.86)
        for m in METRICS
    }
    return ChunkEvidence(
        model=model,
        version=version,
        chunk_index=3,
        rows=500,
        first_seq=1,
        last_seq=500,
        start_time="2013-07-01T00:00:00+00:00",
        end_time="2013-07-08T00:00:00+00:00",
        estimated=est,
        realized={m: 0.79 for m in METRICS},
        labelled_rows=400,
        realized_sampling_error={m: 0.02 for m in METRICS},
        drift=drift,
        multivariate_error=1.2,
        multivariate_threshold=1.5,
        missing_ratio={f: 0.01 * i for i, f in enumerate(FEATURES)},
        out_of_range_ratio={f: 0.002 * i for i, f in enumerate(FEATURES)},
        drift_ranking=[(f, 1.0 - 0.1 * i) for i, f in enumerate(FEATURES)],
        reliance={f: 0.3 - 0.02 * i for i, f in enumerate(FEATURES)},
        reference_reliance={f: 0.28 - 0.02 * i for i, f in enumerate(FEATURES)},
        attribution_shift={f: 0.01 * i for i, f in enumerate(FEATURES)},
        attribution_rows=200,
        segments=[SegmentEvidence("EWR", 170, dict(est), {m: 0.75 for m in METRICS})],
        parity_violation_ratio=0.0,
        known_good_version="v0",
        rank_correlation=0.97,
        rank_correlation_floor=0.9,
        known_good_estimated={m: Estimate(0.81) for m in METRICS},
        nowcast={m: Estimate(0.8, interval_lower=0.76, interval_upper=0.84) for m in METRICS},
        track_record={m: TrackRecord(m, 5, 0.01, 0.0, 0.9, 0.8, 5, 0.9) for m in METRICS},
    )

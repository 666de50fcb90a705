"""Analysis of one model version's chunks: label-free estimates, drift, quality, shadow scores.

`FittedVersion` is everything that needs the version's reference set -- NannyML CBPE,
drift references and thresholds, the reconstruction PCA, the booster, the reference's
TreeSHAP reliance per feature (attribution.py) -- fitted once per
registered version and then reused every cycle (fitting is the expensive part; applying
is linear in rows). `analyse_chunks` analyses a batch of consecutive chunks with one
NannyML call per calculator (see estimation.KeyChunker); `analyse_chunk` is the one-chunk
case. Nothing here is specific to a data set: columns, types, label, threshold and segment come
from the registration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from contract.registration import Registration
from monitor.analysis import attribution, shadow
from monitor.analysis.drift import (
    MultivariateDrift,
    correlation_weights,
    data_quality,
    drift_ranking,
)
from monitor.analysis.estimation import (
    CHUNK_KEY,
    LABEL,
    METRICS,
    PROBA,
    PerformanceEstimator,
    realized_metrics,
)
from monitor.analysis.intervals import (
    CALIBRATION_LABELLED_SHARE,
    DEFAULT_LEVEL,
    IntervalCalibrator,
    residual_of,
    with_interval,
)
from monitor.analysis.univariate import UnivariateDrift
from monitor.core.drift_settings import DriftSettings
from monitor.core.evidence import ChunkEvidence, Estimate, SegmentEvidence, TrackRecord
from monitor.core.times import now_iso

log = logging.getLogger(__name__)

# A slice with fewer rows than this gets no estimate: its sampling error would drown it.
MIN_SEGMENT_ROWS = 50


@dataclass
class FittedVersion:
    """A registered version with its fitted calculators and its own artifact (for re-scoring)."""

    registration: Registration
    chunk_size: int
    booster: xgb.Booster
    reference: pd.DataFrame  # features, `label`, `probability` (the model's own scores)
    estimator: PerformanceEstimator
    univariate: UnivariateDrift
    multivariate: MultivariateDrift
    # Intervals at the stated level: reference residuals, then the version's own errors.
    intervals: IntervalCalibrator
    # Estimated ROC AUC on the reference chunks, kept from fitting: the NannyML objects'
    # `result` changes whenever the report draws NannyML's figures.
    reference_auc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Mean |TreeSHAP contribution| per feature on (a sample of) the reference, fitted once.
    reference_reliance: dict[str, float] = field(default_factory=dict)
    _floors: dict[str, float | None] = field(default_factory=dict, repr=False)
    # The reconstruction refitted without ignored features, per set ignored (fitted lazily).
    _multivariate_without: dict[frozenset[str], MultivariateDrift | None] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def fit(
        cls,
        registration: Registration,
        chunk_size: int = 500,
        interval_level: float = DEFAULT_LEVEL,
    ) -> FittedVersion:
        """`interval_level`: the intervals' stated coverage (`MONITOR_ESTIMATE_INTERVAL_LEVEL`
        in the monitor, passed down by its `VersionCache`)."""
        schema = registration.schema
        reference = registration.reference_frame().rename(columns={schema.label.name: LABEL})
        reference = reference.dropna(subset=[LABEL, PROBA]).reset_index(drop=True)
        booster = xgb.Booster()
        # UBJSON/JSON only (validated at registration): loading cannot execute code.
        booster.load_model(bytearray(registration.artifact_bytes()))
        booster.set_param({"nthread": 1})
        estimator = PerformanceEstimator.fit(reference, schema.threshold, chunk_size)
        reference_chunks = estimator.cbpe.result.filter(period="reference").to_df()
        return cls(
            registration=registration,
            chunk_size=chunk_size,
            booster=booster,
            reference=reference,
            estimator=estimator,
            univariate=UnivariateDrift.fit(reference, schema, chunk_size),
            multivariate=MultivariateDrift.fit(reference, schema, chunk_size),
            intervals=IntervalCalibrator.fit(estimator, reference, chunk_size, interval_level),
            reference_auc=reference_chunks[("roc_auc", "value")].to_numpy(dtype=float),
            reference_reliance=attribution.reference_reliance(booster, schema, reference),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.registration.model, self.registration.version)

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """The version's own score for logged inputs, exactly as the predictor computes it."""
        if len(frame) == 0:
            return np.zeros(0, dtype=np.float32)
        x = self.registration.schema.to_matrix(frame)
        return np.asarray(self.booster.inplace_predict(x), dtype=np.float32)

    def multivariate_for(self, ignored: frozenset[str]) -> MultivariateDrift | None:
        """The reconstruction over the features not ignored (None when none is left)."""
        ignored = ignored & frozenset(self.registration.schema.feature_names)
        if not ignored:
            return self.multivariate
        if ignored not in self._multivariate_without:
            schema = self.registration.schema
            fitted = None
            if len(ignored) < len(schema.features):
                fitted = MultivariateDrift.fit(self.reference, schema, self.chunk_size, ignored)
            self._multivariate_without[ignored] = fitted
        return self._multivariate_without[ignored]

    def rank_correlation_floor(self, known_good: FittedVersion) -> float | None:
        """Floor of Spearman(live, known-good) on the reference set; cached per known-good."""
        kg_version = known_good.registration.version
        if kg_version not in self._floors:
            ref = self.reference
            self._floors[kg_version] = shadow.rank_correlation_floor(
                self.score(ref), known_good.score(ref), self.chunk_size
            )
        return self._floors[kg_version]


def analyse_chunk(
    live: FittedVersion,
    rows: pd.DataFrame,
    chunk_index: int,
    known_good: FittedVersion | None = None,
) -> ChunkEvidence:
    """All evidence for one chunk of consecutive records of the live version."""
    return analyse_chunks(live, rows, chunk_index, known_good, chunk_size=max(len(rows), 1))[0]


def analyse_chunks(
    live: FittedVersion,
    rows: pd.DataFrame,
    first_chunk_index: int,
    known_good: FittedVersion | None = None,
    chunk_size: int | None = None,
    groups: tuple[np.ndarray, list[int]] | None = None,
    drift_settings: DriftSettings | None = None,
) -> list[ChunkEvidence]:
    """Evidence for consecutive chunks of `chunk_size` rows (the last one may be shorter).

    `groups` cuts the rows differently (chunks by event time): per row its chunk's position
    0..n-1, non-decreasing, and per chunk its `chunk_index`; `first_chunk_index` and
    `chunk_size` are then unused. `drift_settings` (the ModelMonitor's `spec.drift`): an
    ignored feature never alerts, is not ranked and is left out of the reconstruction; a
    feature's chosen method is the only one that alerts for it, at its own threshold if set.
    """
    if len(rows) == 0:
        return []
    if known_good is not None and known_good.key == live.key:
        known_good = None  # shadow-scoring a version against itself says nothing
    size = chunk_size or live.chunk_size
    rows = rows.reset_index(drop=True)
    if groups is None:
        chunk_ids = np.arange(len(rows)) // size
        n_chunks = int(chunk_ids[-1]) + 1
        indices = [first_chunk_index + i for i in range(n_chunks)]
    else:
        chunk_ids, indices = np.asarray(groups[0], dtype=np.int64), list(groups[1])
        n_chunks = len(indices)
    starts = np.searchsorted(chunk_ids, np.arange(n_chunks + 1), side="left")
    schema = live.registration.schema
    threshold = schema.threshold

    frame = rows.copy()
    frame[PROBA] = pd.to_numeric(frame[PROBA], errors="coerce").astype(float)
    frame[LABEL] = pd.to_numeric(frame[LABEL], errors="coerce") if LABEL in frame else np.nan
    frame[CHUNK_KEY] = chunk_ids

    seg_frame, seg_keys = _segment_frame(frame, schema.segment, n_chunks)
    both = pd.concat([frame[[PROBA, CHUNK_KEY]], seg_frame[[PROBA, CHUNK_KEY]]], ignore_index=True)
    live_estimates = live.estimator.estimate(both[PROBA].to_numpy(), both[CHUNK_KEY].to_numpy())
    nowcasts = live.estimator.nowcast(
        frame[PROBA].to_numpy(), frame[LABEL].to_numpy(dtype=float, na_value=np.nan), chunk_ids
    )
    univariate = live.univariate.calculate(frame, chunk_ids, n_chunks, drift_settings)
    ignored = drift_settings.ignored if drift_settings else frozenset()
    reconstruction = live.multivariate_for(ignored)
    multivariate = (
        reconstruction.errors(frame, chunk_ids, n_chunks)
        if reconstruction is not None
        else [(None, None, False)] * n_chunks
    )
    applied = live.univariate.applied(drift_settings)

    analysis_js = {
        f.name: np.array([_js(univariate[i], f.name) for i in range(n_chunks)])
        for f in schema.features
    }
    analysis_auc = np.array(
        [_value(live_estimates.get(i, {}).get("roc_auc")) for i in range(n_chunks)]
    )
    weights = correlation_weights(
        live.univariate.reference_js, analysis_js, live.reference_auc, analysis_auc
    )

    own = live.score(frame)
    attributions = attribution.chunk_reliance(live.booster, schema, frame, starts.tolist())
    reference_auc = float(np.nanmean(live.reference_auc)) if len(live.reference_auc) else None
    kg_scores = known_good.score(frame) if known_good is not None else None
    kg_estimates: dict[int, dict[str, Estimate]] = {}
    floor = None
    if known_good is not None and kg_scores is not None:
        kg_estimates = known_good.estimator.estimate(kg_scores, chunk_ids)
        floor = live.rank_correlation_floor(known_good)

    quality = data_quality(frame, schema, chunk_ids, n_chunks)
    now = now_iso()
    seg_parts = {int(str(k)): part for k, part in seg_frame.groupby(CHUNK_KEY, sort=False)}
    out = []
    for i in range(n_chunks):
        # Chunks are consecutive rows: slicing keeps a 1M-row batch linear (a boolean mask
        # per chunk made it quadratic).
        mask = slice(int(starts[i]), int(starts[i + 1]))
        chunk = frame.iloc[mask]
        missing, out_of_range = quality[i]
        mv_error, mv_threshold, mv_alert = multivariate[i]
        realized = realized_metrics(chunk, threshold)
        labelled = int(chunk[LABEL].notna().sum())
        estimated, nowcast, record = _calibrated(
            live.intervals,
            _seq(chunk, "min"),
            live_estimates.get(i, {}),
            nowcasts.get(i),
            realized if labelled >= CALIBRATION_LABELLED_SHARE * len(chunk) else {},
        )
        reliance, explained_rows = attributions[i]
        evidence: dict[str, Any] = {}
        if known_good is not None and kg_scores is not None:
            kg_chunk = chunk.assign(**{PROBA: kg_scores[mask].astype(float)})
            evidence = {
                "known_good_version": known_good.registration.version,
                "same_learner": known_good.registration.learner == live.registration.learner,
                "rank_correlation": shadow.rank_correlation(
                    chunk[PROBA].to_numpy(), kg_scores[mask]
                ),
                "rank_correlation_floor": floor,
                "known_good_estimated": kg_estimates.get(i, {}),
                "known_good_realized": realized_metrics(
                    kg_chunk, known_good.registration.schema.threshold
                ),
            }
        out.append(
            ChunkEvidence(
                model=live.registration.model,
                version=live.registration.version,
                chunk_index=indices[i],
                rows=len(chunk),
                first_seq=_seq(chunk, "min"),
                last_seq=_seq(chunk, "max"),
                start_time=_iso(chunk, "min"),
                end_time=_iso(chunk, "max"),
                estimated=estimated,
                realized=realized,
                labelled_rows=labelled,
                realized_sampling_error=live.estimator.realized_errors(labelled, realized),
                nowcast=nowcast,
                track_record=record,
                drift=univariate[i],
                multivariate_error=mv_error,
                multivariate_threshold=mv_threshold,
                multivariate_alert=mv_alert,
                missing_ratio=missing,
                out_of_range_ratio=out_of_range,
                drift_ranking=drift_ranking(
                    univariate[i], live.registration.feature_importance, weights, reliance, ignored
                ),
                reliance=reliance,
                reference_reliance=live.reference_reliance,
                attribution_shift=attribution.attribution_shift(reliance, live.reference_reliance),
                attribution_rows=explained_rows,
                reference_roc_auc=reference_auc,
                segments=_segments(seg_keys.get(i, []), seg_parts, live_estimates, threshold),
                parity_violation_ratio=shadow.parity_violation_ratio(
                    chunk[PROBA].to_numpy(), own[mask]
                ),
                analysed_at=now,
                drift_settings=applied,
                **evidence,
            )
        )
    return out


def _calibrated(
    intervals: IntervalCalibrator,
    position: int,
    estimates: dict[str, Estimate],
    nowcast: tuple[dict[str, Estimate], float] | None,
    realized: dict[str, float | None],
) -> tuple[dict[str, Estimate], dict[str, Estimate], dict[str, TrackRecord]]:
    """The chunk's estimates with intervals (from chunks before it), its nowcast, and the
    track record after its own residual, when labelled enough, is remembered."""
    estimated = intervals.apply(position, estimates)
    mixed: dict[str, Estimate] = {}
    if nowcast is not None:
        values, unlabelled = nowcast
        for metric, est in values.items():
            base = Estimate(value=est.value, sampling_error=est.sampling_error)
            half = None
            if est.value is not None and est.sampling_error is not None:
                half = intervals.half_width(position, metric, est.sampling_error)
            # The uncertain share: pairs with an unlabelled row (ROC AUC), else rows.
            share = 1 - (1 - unlabelled) ** 2 if metric == "roc_auc" else unlabelled
            mixed[metric] = with_interval(base, half, intervals.level, share)
    record: dict[str, TrackRecord] = {}
    for metric, est in estimated.items():
        residual = residual_of(est, realized.get(metric))
        if residual is not None:
            intervals.observe(position, metric, residual)
        summary = intervals.track_record(metric)
        if summary is not None:
            record[metric] = summary
    return estimated, mixed, record


def _segment_frame(
    frame: pd.DataFrame, segment: str | None, n_chunks: int
) -> tuple[pd.DataFrame, dict[int, list[tuple[int, str]]]]:
    """Rows of every (chunk, segment value) slice with enough rows, under a key >= n_chunks.

    Returns the slice rows (their `_chunk` replaced by the slice key) and, per chunk id,
    its slices as (key, segment value).
    """
    empty: dict[int, list[tuple[int, str]]] = {}
    if segment is None or segment not in frame:
        return frame.iloc[0:0], empty
    values = frame[segment].astype(object).where(frame[segment].notna(), "(missing)").astype(str)
    pairs = pd.MultiIndex.from_arrays([frame[CHUNK_KEY].to_numpy(), values.to_numpy()])
    codes, uniques = pd.factorize(pairs)
    counts = np.bincount(codes, minlength=len(uniques))
    keep = counts[codes] >= MIN_SEGMENT_ROWS
    seg = frame.loc[keep].copy()
    seg[CHUNK_KEY] = codes[keep] + n_chunks
    by_chunk: dict[int, list[tuple[int, str]]] = {}
    for code, (chunk_id, value) in enumerate(uniques):
        if counts[code] >= MIN_SEGMENT_ROWS:
            by_chunk.setdefault(int(chunk_id), []).append((code + n_chunks, str(value)))
    return seg, by_chunk


def _segments(
    keys: list[tuple[int, str]],
    seg_parts: dict[int, pd.DataFrame],
    estimates: dict[int, dict[str, Estimate]],
    threshold: float,
) -> list[SegmentEvidence]:
    out = []
    for key, value in sorted(keys, key=lambda kv: kv[1]):
        part = seg_parts[key]
        out.append(
            SegmentEvidence(
                segment=value,
                rows=len(part),
                estimated=estimates.get(key, {}),
                realized=realized_metrics(part, threshold),
            )
        )
    return out


def _js(drifts: list[Any], feature: str) -> float:
    for d in drifts:
        if d.feature == feature and d.method == "jensen_shannon":
            return float(d.value)
    return float("nan")


def _value(estimate: Estimate | None) -> float:
    return float("nan") if estimate is None or estimate.value is None else float(estimate.value)


def _seq(chunk: pd.DataFrame, how: str) -> int:
    if "seq" not in chunk or chunk.empty:
        return int(getattr(chunk.index, how)()) if not chunk.empty else 0
    return int(getattr(chunk["seq"], how)())


def _iso(chunk: pd.DataFrame, how: str) -> str:
    """The first or last event time in the chunk (the receive time for older frames)."""
    column = "event_time" if "event_time" in chunk else "timestamp"
    if column not in chunk or chunk.empty:
        return ""
    ts = pd.to_datetime(getattr(chunk[column], how)(), utc=True)
    return "" if pd.isna(ts) else ts.isoformat()


__all__ = ["METRICS", "FittedVersion", "analyse_chunk", "analyse_chunks"]

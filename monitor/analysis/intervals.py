"""Intervals with a stated coverage around the label-free estimate, calibrated on evidence.

Why not NannyML's band: its +-3 sampling errors are the noise of a chunk *if the score ->
label relation stayed as on the reference*. It does not (weather episodes, calibration
shift), so on the 2013 replay that "3 sigma" band holds about half the time. Here the error
of an estimate is modelled as sampling noise plus a shift term whose variance is measured:

    realized - estimate ~ N(0, sigma^2 + tau^2)

`sigma` is NannyML's sampling error of the chunk (shrinks with rows); `tau^2` is the extra
variance, estimated from two kinds of residuals (realized - estimate):

- the reference, resampled by chunk: every window of `chunk_size` consecutive reference rows
  is estimated with a calibrator fitted on the *other* rows (leave-window-out, NannyML's own
  calibrator class), so a window's residual carries the shift between that stretch of time
  and the rest -- what the live chunks will face. Overlapping windows count as
  `reference_rows / chunk_size` observations together.
- the version's own past live chunks, once (almost) fully labelled: their observed errors,
  the last `TRACK_RECORD_CHUNKS`, each counting 1 (split-conformal style: a chunk's interval
  uses only chunks before it, never its own labels).

The interval is a Student-t prediction interval on the pooled variance (degrees of freedom
= observations - 1), so a handful of chunks gives a wide band, not a falsely narrow one. A
rank-based conformal quantile was the first choice; at 90% it needs >= 9 calibration chunks
and the reference holds ~9 chunks of 500 rows and ~2 of 2,000, where it is infinite.
Assumptions and failure modes: docs/analysis.md ("Intervals").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from monitor.analysis.estimation import LABEL, PROBA, realized_metrics
from monitor.core.evidence import Estimate, TrackRecord

# Past labelled chunks a version's calibration and track record look back over.
TRACK_RECORD_CHUNKS = 24
# A chunk's residual calibrates the intervals (and enters the track record) once this share
# of its rows is labelled: a realized value on fewer labels is noisier than the estimate it
# would judge. Not the gap's minimum (`monitor.core.gap.GapFilter.min_labelled_rows`), which
# asks only that labels on the same rows compare two versions.
CALIBRATION_LABELLED_SHARE = 0.9
DEFAULT_LEVEL = 0.9


@dataclass(frozen=True)
class Residual:
    """One labelled chunk's estimate, its intervals as issued, and the realized value."""

    estimate: float
    realized: float
    sampling_error: float
    interval: tuple[float, float] | None = None
    band: tuple[float, float] | None = None


@dataclass
class IntervalCalibrator:
    """Per metric: the reference's extra variance, and the version's live residuals."""

    level: float
    reference_extra: dict[str, float]  # mean(residual^2 - sigma^2) over reference windows
    reference_weight: float  # reference rows / chunk size: what the windows count as
    live: dict[str, dict[int, Residual]] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        estimator: Any,
        reference: pd.DataFrame,
        chunk_size: int,
        level: float = DEFAULT_LEVEL,
    ) -> IntervalCalibrator:
        """Leave-window-out residuals of every window of `chunk_size` reference rows.

        `estimator` is the version's `PerformanceEstimator`; `reference` has `probability`
        and `label`, in time order (the registration's order).
        """
        proba = reference[PROBA].to_numpy(dtype=float)
        label = reference[LABEL].to_numpy(dtype=int)
        n = len(proba)
        size = min(chunk_size, n // 2)
        squares: dict[str, list[float]] = {}
        if size >= 20:
            stride = max(size // 4, 25)
            for start in range(0, n - size + 1, stride):
                window = np.arange(start, start + size)
                rest = np.r_[0:start, start + size : n]
                calibrator = type(estimator.cbpe.calibrator)()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    calibrator.fit(proba[rest], label[rest])
                calibrated = np.asarray(calibrator.calibrate(proba[window]), dtype=float)
                estimates = estimator.estimate_calibrated(proba[window], calibrated)
                frame = pd.DataFrame({PROBA: proba[window], LABEL: label[window]})
                realized = realized_metrics(frame, estimator.threshold)
                for metric, est in estimates.items():
                    truth = realized.get(metric)
                    if est.value is None or truth is None or est.sampling_error is None:
                        continue
                    squares.setdefault(metric, []).append(
                        (truth - est.value) ** 2 - est.sampling_error**2
                    )
        extra = {m: float(np.mean(v)) for m, v in squares.items() if v}
        return cls(level=level, reference_extra=extra, reference_weight=n / max(chunk_size, 1))

    def observe(self, position: int, metric: str, residual: Residual) -> None:
        """Remember a labelled chunk's residual under its position (its first store
        sequence: re-analysis keeps it, and replaces the residual)."""
        self.live.setdefault(metric, {})[position] = residual

    def history(self, metric: str, before: int | None = None) -> list[Residual]:
        """The last `TRACK_RECORD_CHUNKS` labelled chunks (before `before`), oldest first."""
        known = self.live.get(metric, {})
        keys = sorted(k for k in known if before is None or k < before)
        return [known[k] for k in keys[-TRACK_RECORD_CHUNKS:]]

    def half_width(self, position: int, metric: str, sampling_error: float) -> float | None:
        """Half-width at `level` for a chunk with this sampling error, from earlier evidence."""
        past = self.history(metric, before=position)
        weight = (self.reference_weight if metric in self.reference_extra else 0.0) + len(past)
        if weight < 2:
            return None
        total = self.reference_weight * self.reference_extra.get(metric, 0.0) + sum(
            (r.realized - r.estimate) ** 2 - r.sampling_error**2 for r in past
        )
        tau2 = max(0.0, total / weight)
        t = float(stats.t.ppf(0.5 + self.level / 2, df=weight - 1))
        return t * math.sqrt(sampling_error**2 + tau2) * math.sqrt(1 + 1 / weight)

    def apply(self, position: int, estimates: dict[str, Estimate]) -> dict[str, Estimate]:
        """The estimates with their calibrated intervals (NannyML's value and band kept)."""
        out = {}
        for metric, est in estimates.items():
            half = None
            if est.value is not None and est.sampling_error is not None:
                half = self.half_width(position, metric, est.sampling_error)
            out[metric] = with_interval(est, half, self.level)
        return out

    def track_record(self, metric: str) -> TrackRecord | None:
        return summarise(self.history(metric), metric, self.level)


def with_interval(est: Estimate, half: float | None, level: float, scale: float = 1.0) -> Estimate:
    """`est` with the interval value +- scale * half, clipped to [0, 1] (every metric here)."""
    if est.value is None or half is None:
        return est
    h = half * scale
    return Estimate(
        **{
            **est.__dict__,
            "interval_lower": max(0.0, est.value - h),
            "interval_upper": min(1.0, est.value + h),
            "interval_level": level,
        }
    )


def summarise(history: Iterable[Residual], metric: str, level: float) -> TrackRecord | None:
    """MAE, bias (realized - estimate) and coverage of the interval and of NannyML's band."""
    rows = list(history)
    if not rows:
        return None
    errors = np.array([r.realized - r.estimate for r in rows])
    with_iv = [r for r in rows if r.interval is not None]
    with_band = [r for r in rows if r.band is not None]
    return TrackRecord(
        metric=metric,
        chunks=len(rows),
        mae=float(np.mean(np.abs(errors))),
        bias=float(np.mean(errors)),
        level=level,
        interval_coverage=_covered(with_iv, "interval"),
        interval_chunks=len(with_iv),
        band_coverage=_covered(with_band, "band"),
    )


def _covered(rows: list[Residual], which: str) -> float | None:
    if not rows:
        return None
    inside = [lo <= r.realized <= hi for r in rows for lo, hi in [getattr(r, which)]]
    return float(np.mean(inside))


def residual_of(est: Estimate, realized: float | None) -> Residual | None:
    """The residual a chunk's stored estimate and realized value make, if both are known."""
    if est.value is None or realized is None or est.sampling_error is None:
        return None
    interval = None
    if est.interval_lower is not None and est.interval_upper is not None:
        interval = (est.interval_lower, est.interval_upper)
    band = None if est.lower is None or est.upper is None else (est.lower, est.upper)
    return Residual(est.value, realized, est.sampling_error, interval, band)


__all__ = [
    "CALIBRATION_LABELLED_SHARE",
    "DEFAULT_LEVEL",
    "TRACK_RECORD_CHUNKS",
    "IntervalCalibrator",
    "Residual",
    "residual_of",
    "summarise",
    "with_interval",
]

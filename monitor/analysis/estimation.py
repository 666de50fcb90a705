"""Label-free performance estimation (NannyML CBPE) and realized performance, per chunk.

Every NannyML call in the monitor goes through one frame layout: the served score in
`probability`, the served class in `predicted_class`, the label (nullable) in `label`, and
a `_chunk` key column saying which chunk (or chunk/segment slice) a row belongs to.
`KeyChunker` turns that key into NannyML chunks, so one NannyML call covers a whole batch
of chunks (and all their slices): NannyML's per-call overhead is paid once per cycle, not
once per chunk, which is what keeps a 100k-row cycle within seconds.

Thresholds. NannyML's default alert (reference mean +- 3 sd of the per-chunk estimate)
never fires on this kind of data: the sd over 500-row reference chunks is ~0.1 AUC, so the
lower bound sits near 0.5. For ROC AUC we use a constant lower threshold instead: the
realized reference ROC AUC minus `ROC_AUC_TOLERATED_DROP` (0.15) -- "the estimate says the
model lost 15 AUC points". Measured on the 2013 replay (docs/analysis.md, bench/replay_accuracy.py)
this fires on the chunks whose realized AUC fell below ~0.62 and on few others. It is a
diagnosis (`Degraded`), never a rollback trigger: rollbacks compare with the known-good
version on the same rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import nannyml as nml
import numpy as np
import pandas as pd
from nannyml.chunk import Chunk, Chunker
from nannyml.performance_estimation.confidence_based import metrics as cbpe_metrics
from nannyml.sampling_error import SAMPLING_ERROR_RANGE
from nannyml.sampling_error.binary_classification import auroc_sampling_error_components
from nannyml.thresholds import ConstantThreshold
from scipy.stats import rankdata

from monitor.core.evidence import Estimate

METRICS: tuple[str, ...] = ("roc_auc", "f1", "precision", "recall")
PROBA, PRED, LABEL, CHUNK_KEY = "probability", "predicted_class", "label", "_chunk"
ROC_AUC_TOLERATED_DROP = 0.15
# The reference needs this many labelled rows to say how big a chunk must be; realized
# metrics on a chunk need only both classes among its labelled rows (and carry their
# sampling error: a small chunk's figure is shown with how little it says).
MIN_LABELLED_ROWS = 50


class KeyChunker(Chunker):
    """One NannyML chunk per distinct value of the `_chunk` column, in order of appearance."""

    def _split(self, data: pd.DataFrame) -> list[Chunk]:
        chunks = []
        for key, part in data.groupby(CHUNK_KEY, sort=False):
            chunks.append(Chunk(key=str(key), data=part.drop(columns=CHUNK_KEY)))
        return chunks

    def split(self, data: pd.DataFrame, columns: Any = None) -> list[Chunk]:
        # NannyML warns about "fewer than 6 chunks" on every call; a cycle often has one.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return super().split(data, columns)  # type: ignore[no-any-return,unused-ignore]


def realized_metrics(frame: pd.DataFrame, threshold: float) -> dict[str, float | None]:
    """ROC AUC, F1, precision, recall on the labelled rows, whenever both classes are among
    them (however few); None otherwise.

    numpy rather than sklearn: same definitions, ~50x less overhead per chunk, which
    matters when a cycle covers hundreds of chunks and slices.
    """
    out: dict[str, float | None] = dict.fromkeys(METRICS)
    label = pd.to_numeric(frame[LABEL], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    p = frame[PROBA].to_numpy(dtype=float)
    keep = np.isfinite(label) & np.isfinite(p)
    y = label[keep].astype(int)
    p = p[keep]
    positives = int(y.sum())
    if not 0 < positives < len(y):
        return out
    pred = p >= threshold
    out["roc_auc"] = roc_auc(y, p)
    tp = float(np.sum(pred & (y == 1)))
    fp = float(np.sum(pred & (y == 0)))
    fn = float(np.sum(~pred & (y == 1)))
    out["precision"] = tp / (tp + fp) if tp + fp else 0.0
    out["recall"] = tp / (tp + fn) if tp + fn else 0.0
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return out


def rows_for_sampling_error(
    labels: np.ndarray, scores: np.ndarray, max_error: float
) -> tuple[int | None, str | None]:
    """The smallest chunk whose ROC AUC sampling error is within `max_error`.

    NannyML's own sampling error on the reference (the one behind every estimate's band):
    `std / sqrt(rows * fraction)`, solved for rows. (None, why) when the reference cannot
    say: too few rows, or a single class.
    """
    y = np.asarray(labels, dtype=float)
    p = np.asarray(scores, dtype=float)
    keep = np.isfinite(y) & np.isfinite(p)
    y, p = y[keep].astype(int), p[keep]
    positives = int(y.sum())
    if len(y) < MIN_LABELLED_ROWS or positives in (0, len(y)):
        return None, (
            f"the reference has {len(y)} labelled rows with {positives} positives: "
            "its ROC AUC sampling error is undefined"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        std, fraction = auroc_sampling_error_components(pd.Series(y), pd.Series(p))
    std, fraction = float(std), float(fraction)
    if not (np.isfinite(std) and fraction > 0):
        return None, "NannyML's ROC AUC sampling error on the reference is undefined"
    return max(MIN_LABELLED_ROWS, int(np.ceil(std**2 / (max_error**2 * fraction)))), None


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney ROC AUC with average ranks for ties (equals sklearn's roc_auc_score)."""
    ranks = rankdata(p)
    n_pos = float(np.sum(y == 1))
    n_neg = float(len(y) - n_pos)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class PerformanceEstimator:
    """A CBPE fitted on one version's reference set (fit once, reused every cycle)."""

    cbpe: Any
    threshold: float
    reference_realized: dict[str, float | None]

    @classmethod
    def fit(
        cls, reference: pd.DataFrame, threshold: float, chunk_size: int
    ) -> PerformanceEstimator:
        """`reference` has probability, label; predicted_class is derived from `threshold`."""
        ref = pd.DataFrame(
            {
                PROBA: reference[PROBA].astype(float).to_numpy(),
                LABEL: reference[LABEL].astype(int).to_numpy(),
            }
        )
        ref[PRED] = (ref[PROBA] >= threshold).astype(int)
        realized = realized_metrics(ref, threshold)
        thresholds = {}
        if realized["roc_auc"] is not None:
            thresholds["roc_auc"] = ConstantThreshold(
                lower=max(0.5, realized["roc_auc"] - ROC_AUC_TOLERATED_DROP), upper=None
            )
        cbpe = nml.CBPE(
            y_pred_proba=PROBA,
            y_pred=PRED,
            y_true=LABEL,
            problem_type="classification_binary",
            metrics=list(METRICS),
            chunk_size=min(chunk_size, max(len(ref) // 2, 1)),
            thresholds=thresholds,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cbpe.fit(ref)
        cbpe.chunker = KeyChunker()
        return cls(cbpe=cbpe, threshold=threshold, reference_realized=realized)

    def estimate_result(self, frame: pd.DataFrame, with_labels: bool = False) -> Any:
        """NannyML's own Result (for its plots); `frame` carries `_chunk` (and `label`)."""
        columns = [CHUNK_KEY, PROBA] + ([LABEL] if with_labels and LABEL in frame else [])
        data = frame[columns].copy()
        data[PROBA] = data[PROBA].astype(float)
        data[PRED] = (data[PROBA] >= self.threshold).astype(int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.cbpe.estimate(data)

    def estimate(self, proba: np.ndarray, keys: np.ndarray) -> dict[int, dict[str, Estimate]]:
        """Chunk key -> metric -> Estimate for scores `proba` grouped by integer `keys`.

        The same numbers as `estimate_result` (a unit test holds them equal): NannyML's
        fitted calibrator, its estimator functions, its sampling-error components, its
        thresholds and alert rule -- called on numpy slices instead of through NannyML's
        per-chunk DataFrame plumbing, which costs ~5 ms per chunk and metric (measured:
        20k rows with slices took 4 s that way, 0.05 s this way).
        """
        proba = np.asarray(proba, dtype=float)
        keys = np.asarray(keys)
        calibrated = self.cbpe.calibrator.calibrate(proba) if self.cbpe.needs_calibration else proba
        calibrated = np.asarray(calibrated, dtype=float)
        pred = (proba >= self.threshold).astype(int)
        order = np.argsort(keys, kind="stable")
        uniq, starts = np.unique(keys[order], return_index=True)
        bounds = np.append(starts, len(order))
        out: dict[int, dict[str, Estimate]] = {}
        for j, key in enumerate(uniq):
            idx = order[bounds[j] : bounds[j + 1]]
            ok = np.isfinite(proba[idx])
            idx = idx[ok]
            out[int(key)] = {
                metric.name: self._metric_estimate(metric, proba[idx], calibrated[idx], pred[idx])
                for metric in self.cbpe.metrics
            }
        return out

    def realized_errors(
        self, labelled_rows: int, realized: dict[str, float | None]
    ) -> dict[str, float | None]:
        """The sampling error of each realized metric on `labelled_rows` rows: the formula
        behind every estimate's band (`_metric_estimate`), NannyML's reference components
        `std / sqrt(rows * fraction)`, at the labelled rows; None where the metric is."""
        out: dict[str, float | None] = {}
        for metric in self.cbpe.metrics:
            if realized.get(metric.name) is None or labelled_rows <= 0:
                out[metric.name] = None
                continue
            out[metric.name] = _sampling_error(metric, labelled_rows)
        return out

    def calibrate(self, proba: np.ndarray) -> np.ndarray:
        """NannyML's fitted calibrator applied to raw scores (identity when it needs none)."""
        proba = np.asarray(proba, dtype=float)
        if not self.cbpe.needs_calibration:
            return proba
        return np.asarray(self.cbpe.calibrator.calibrate(proba), dtype=float)

    def estimate_calibrated(self, raw: np.ndarray, calibrated: np.ndarray) -> dict[str, Estimate]:
        """One chunk's estimates from raw scores and given calibrated probabilities.

        What `estimate` does per chunk, with the calibration supplied: the reference's
        leave-window-out calibrators (intervals.py) and the nowcast's mixed set use it.
        """
        raw = np.asarray(raw, dtype=float)
        pred = (raw >= self.threshold).astype(int)
        return {
            metric.name: self._metric_estimate(metric, raw, np.asarray(calibrated), pred)
            for metric in self.cbpe.metrics
        }

    def nowcast(
        self, proba: np.ndarray, labels: np.ndarray, keys: np.ndarray
    ) -> dict[int, tuple[dict[str, Estimate], float]]:
        """Per chunk key: the expected metrics over the mixed set, and the unlabelled share.

        Labelled rows enter CBPE's expected-metric formulas with their label as a certain
        probability (0 or 1), unlabelled rows with their calibrated probability; with every
        label in, the value is the realized metric.
        """
        proba = np.asarray(proba, dtype=float)
        labels = np.asarray(labels, dtype=float)
        mixed = np.where(np.isfinite(labels), labels, self.calibrate(proba))
        out: dict[int, tuple[dict[str, Estimate], float]] = {}
        for key in np.unique(keys):
            idx = np.flatnonzero((keys == key) & np.isfinite(proba))
            if len(idx) == 0:
                continue
            unlabelled = float(np.mean(~np.isfinite(labels[idx])))
            out[int(key)] = (self.estimate_calibrated(proba[idx], mixed[idx]), unlabelled)
        return out

    @staticmethod
    def _metric_estimate(
        metric: Any, raw: np.ndarray, calibrated: np.ndarray, pred: np.ndarray
    ) -> Estimate:
        if len(raw) == 0:
            return Estimate(value=None)
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            if metric.name == "roc_auc":
                value = cbpe_metrics.estimate_roc_auc(calibrated, raw)
            else:
                value = _ESTIMATORS[metric.name](pred, calibrated)
        error = _sampling_error(metric, len(raw))
        value = float(value)
        if not np.isfinite(value):
            return Estimate(value=None, sampling_error=error)
        low_limit = (
            -np.inf
            if metric.lower_threshold_value_limit is None
            else metric.lower_threshold_value_limit
        )
        high_limit = (
            np.inf
            if metric.upper_threshold_value_limit is None
            else metric.upper_threshold_value_limit
        )
        return Estimate(
            value=value,
            lower=float(max(low_limit, value - SAMPLING_ERROR_RANGE * error)),
            upper=float(min(high_limit, value + SAMPLING_ERROR_RANGE * error)),
            sampling_error=error,
            lower_threshold=_opt(metric.lower_threshold_value),
            upper_threshold=_opt(metric.upper_threshold_value),
            alert=bool(metric.alert(value)),
        )


def _sampling_error(metric: Any, rows: int) -> float:
    """NannyML's sampling error of `metric` on `rows` rows: its reference components
    (std, fraction), `std / sqrt(rows * fraction)`."""
    std, fraction = metric._sampling_error_components
    return float(std / np.sqrt(rows * fraction))


def _opt(value: Any) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


_ESTIMATORS = {
    "f1": cbpe_metrics.estimate_f1,
    "precision": cbpe_metrics.estimate_precision,
    "recall": cbpe_metrics.estimate_recall,
}


def estimates_by_key(result: Any) -> dict[str, dict[str, Estimate]]:
    df = result.filter(period="analysis").to_df()
    out: dict[str, dict[str, Estimate]] = {}
    for _, row in df.iterrows():
        out[str(row[("chunk", "key")])] = {m: _estimate(row, m) for m in METRICS}
    return out


def _estimate(row: pd.Series, metric: str) -> Estimate:
    def num(field: str) -> float | None:
        value = row.get((metric, field))
        if value is None or pd.isna(value):
            return None
        return float(value)

    return Estimate(
        value=num("value"),
        lower=num("lower_confidence_boundary"),
        upper=num("upper_confidence_boundary"),
        sampling_error=num("sampling_error"),
        lower_threshold=num("lower_threshold"),
        upper_threshold=num("upper_threshold"),
        alert=bool(row.get((metric, "alert"), False) or False),
    )

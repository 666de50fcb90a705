"""The estimates compared in bench/label_delay.py, each as issued at a chunk's close.

Every method sees only what the monitor would know at that moment (bench/delay_timeline.py):
the reference, the chunk's scores, and the labels that have arrived. ROC AUC throughout.

- `reference`: the reference's realized ROC AUC (naive baseline 1);
- `persistence`: the newest fully labelled chunk's realized ROC AUC (naive baseline 2);
- `cbpe`: stock CBPE, fitted once on the reference (the monitor's estimate today);
- `refit(a, n)`: CBPE whose isotonic calibrator is refitted on the reference (weight 1 - a)
  plus the freshest `n` labelled live rows (weight a);
- `carry(base, b, k)`: `base` plus b x its mean error over the newest k labelled chunks
  (the track record's bias, carried forward);
- `pick(candidates, k)`: per chunk, whichever candidate erred least on the newest k
  labelled chunks (the data decide how much to trust the fresh labels, at run time);
- `blend(base, b, h)`: w x persistence + (1 - w) x `base`, w = b x 2^(-age / h days),
  age = how long ago the newest fully labelled chunk closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from sklearn.isotonic import IsotonicRegression

from bench.delay_timeline import Timeline
from monitor.analysis.estimation import PerformanceEstimator, roc_auc

DAY = 86_400 * 10**9  # ns
MIN_LIVE_ROWS = 200  # fewer labelled live rows: the refit falls back to the reference alone


@dataclass
class Replay:
    """One data set's live period under one label delay, with what every method needs."""

    timeline: Timeline
    delay: int  # ns
    proba: np.ndarray
    label: np.ndarray
    ref_proba: np.ndarray
    ref_label: np.ndarray
    estimator: PerformanceEstimator
    reference_auc: float

    def __post_init__(self) -> None:
        t = self.timeline
        self.realized = np.array(
            [_auc(self.label[t.rows(i)], self.proba[t.rows(i)]) for i in range(t.chunks)]
        )
        keys = np.repeat(np.arange(t.chunks), t.size)
        stock = self.estimator.estimate(self.proba[: len(keys)], keys)
        self.cbpe = np.array([_val(stock[i]["roc_auc"].value) for i in range(t.chunks)])
        self.sampling_error = np.array(
            [_val(stock[i]["roc_auc"].sampling_error) for i in range(t.chunks)]
        )
        self.newest = [t.newest_labelled(self.delay, t.close(i)) for i in range(t.chunks)]

    def persistence(self) -> np.ndarray:
        return np.array(
            [
                self.reference_auc if j is None else _fill(self.realized[j], self.reference_auc)
                for j in self.newest
            ]
        )

    def reference(self) -> np.ndarray:
        return np.full(self.timeline.chunks, self.reference_auc)

    def nowcast(self) -> np.ndarray:
        """Stock CBPE's nowcast: the labels already in enter as certain (the monitor's)."""
        t, out = self.timeline, []
        for i in range(t.chunks):
            sl = t.rows(i)
            known = t.labelled_rows(self.delay, t.close(i))
            lab = self.label[sl].astype(float)
            lab[max(known - sl.start, 0) :] = np.nan
            res = self.estimator.nowcast(self.proba[sl], lab, np.zeros(t.size, dtype=int))
            out.append(_val(res[0][0]["roc_auc"].value))
        return np.array(out)

    def refit(self, a: float, n: int) -> np.ndarray:
        t, out = self.timeline, []
        for i in range(t.chunks):
            known = t.labelled_rows(self.delay, t.close(i))
            lo = max(0, known - n)
            if known - lo < MIN_LIVE_ROWS:
                out.append(self.cbpe[i])
                continue
            xs = np.r_[self.ref_proba, self.proba[lo:known]]
            ys = np.r_[self.ref_label, self.label[lo:known]]
            ws = np.r_[
                np.full(len(self.ref_proba), (1 - a) / len(self.ref_proba)),
                np.full(known - lo, a / (known - lo)),
            ]
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
            iso.fit(xs, ys, sample_weight=ws)
            raw = self.proba[t.rows(i)]
            est = self.estimator.estimate_calibrated(raw, iso.predict(raw))["roc_auc"]
            out.append(_val(est.value))
        return np.array(out)

    def carry(self, base: np.ndarray, b: float, k: int) -> np.ndarray:
        out = base.copy()
        for i, j in enumerate(self.newest):
            if j is None:
                continue
            past = [self.realized[m] - base[m] for m in range(max(0, j - k + 1), j + 1)]
            past = [e for e in past if np.isfinite(e)]
            if past:
                out[i] = base[i] + b * float(np.mean(past))
        return out

    def blend(self, base: np.ndarray, b: float, half_life_days: float) -> np.ndarray:
        persist, out = self.persistence(), base.copy()
        t = self.timeline
        for i, j in enumerate(self.newest):
            if j is None or not np.isfinite(base[i]):
                continue
            age = (t.close(i) - t.close(j)) / DAY
            w = b * 0.5 ** (age / half_life_days)
            out[i] = w * persist[i] + (1 - w) * base[i]
        return out

    def pick(self, candidates: dict[str, np.ndarray], k: int) -> np.ndarray:
        """Per chunk, the candidate with the lowest error over the newest k labelled chunks
        (the track record decides, at run time, from labels already in)."""
        names = list(candidates)
        stack = np.vstack([candidates[n] for n in names])
        out = stack[0].copy()
        for i, j in enumerate(self.newest):
            if j is None:
                continue
            past = slice(max(0, j - k + 1), j + 1)
            err = np.abs(stack[:, past] - self.realized[past])
            mean = np.nanmean(np.where(np.isfinite(err), err, np.nan), axis=1)
            if np.isfinite(mean).any():
                out[i] = stack[int(np.nanargmin(mean)), i]
        return out


Method = Callable[[Replay], np.ndarray]


def grid() -> dict[str, Method]:
    """Every candidate by name (the selection picks one; the rest are reported as lost)."""
    out: dict[str, Method] = {"cbpe": lambda r: r.cbpe}
    for a in (0.25, 0.5, 1.0):
        for n in (1000, 4000):
            out[f"refit(a={a},n={n})"] = partial(_refit, a=a, n=n)
    for b in (0.5, 1.0):
        for k in (1, 4):
            out[f"carry(cbpe,b={b},k={k})"] = partial(_carry, b=b, k=k)
    for b in (0.5, 1.0):
        for h in (1.0, 7.0, 30.0):
            out[f"blend(cbpe,b={b},h={h:g}d)"] = partial(_blend, b=b, h=h)
    return out


def _refit(r: Replay, a: float, n: int) -> np.ndarray:
    return r.refit(a, n)


def _carry(r: Replay, b: float, k: int) -> np.ndarray:
    return r.carry(r.cbpe, b, k)


def _blend(r: Replay, b: float, h: float) -> np.ndarray:
    return r.blend(r.cbpe, b, h)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y, dtype=int)
    return roc_auc(y, p) if 0 < y.sum() < len(y) else float("nan")


def _val(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _fill(x: float, default: float) -> float:
    return x if np.isfinite(x) else default


__all__ = ["DAY", "Method", "Replay", "grid"]


def pape(
    r: Replay, ref_x: np.ndarray, live_x: np.ndarray, cap_rows: int = 5000, seed: int = 0
) -> np.ndarray:
    """Importance-weighted calibration (PAPE, Bialek et al. 2024, arXiv 2401.08348), per chunk.

    A classifier tells the chunk's rows from (up to `cap_rows` of) the reference's on the
    features; its odds weight the reference rows, and the isotonic calibrator is refitted on
    the reweighted reference. Label-free: it uses no live label, so no delay changes it.
    """
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    keep = rng.choice(len(ref_x), size=min(cap_rows, len(ref_x)), replace=False)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "nthread": 1}
    t, out = r.timeline, []
    for i in range(t.chunks):
        chunk_x = live_x[t.rows(i)]
        x = np.vstack([ref_x[keep], chunk_x])
        y = np.r_[np.zeros(len(keep)), np.ones(len(chunk_x))]
        booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=30)
        odds = booster.predict(xgb.DMatrix(ref_x))
        w = np.clip(odds / np.clip(1 - odds, 1e-6, None), 0, None) * len(keep) / len(chunk_x)
        w = np.minimum(w, 20.0)
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
        iso.fit(r.ref_proba, r.ref_label, sample_weight=w + 1e-9)
        raw = r.proba[t.rows(i)]
        out.append(_val(r.estimator.estimate_calibrated(raw, iso.predict(raw))["roc_auc"].value))
    return np.array(out)

"""Multivariate drift, data quality and the drift ranking: why the estimate moved.

None of this rolls a release back (docs/design.md, "Deciding": drift measured against a model's
own reference fires for the good model whenever the season changes); it explains.

- Multivariate drift: NannyML's PCA data-reconstruction error, fitted once on the version's
  reference inputs (without the features a ModelMonitor ignores), applied to `_chunk`-keyed
  frames (see estimation.py).
- Data quality: missing ratio per feature, share of present values outside the schema.
- Ranking ("which features are to blame"): each feature's Jensen-Shannon drift is
  correlated with the change of the estimated ROC AUC over reference and analysed chunks
  (NannyML's CorrelationRanker formula); a feature's score in one chunk is
  `reliance share x max(correlation, 0) x JS drift in this chunk` (the reliance share from
  the chunk's TreeSHAP attributions, attribution.py; feature importance without them), so a
  drifting feature the model leans on and whose drift tracks the performance change comes
  first, and one the model does not use does not rank at all.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import nannyml as nml
import numpy as np
import pandas as pd

from contract.schema import ModelSchema
from monitor.analysis.attribution import reliance_share
from monitor.analysis.estimation import CHUNK_KEY, KeyChunker
from monitor.core.evidence import FeatureDrift


def feature_frame(frame: pd.DataFrame, schema: ModelSchema) -> pd.DataFrame:
    """Features with the dtypes NannyML expects: floats for numbers, strings for categories."""
    out = pd.DataFrame(index=frame.index)
    for feat in schema.features:
        col = frame[feat.name]
        if feat.dtype == "category":
            out[feat.name] = col.astype(object).where(col.notna(), None)
        else:
            out[feat.name] = pd.to_numeric(col, errors="coerce").astype(float)
    return out


@dataclass
class MultivariateDrift:
    """NannyML's PCA data-reconstruction drift, fitted once on the version's reference."""

    schema: ModelSchema
    calculator: Any

    @classmethod
    def fit(
        cls,
        reference: pd.DataFrame,
        schema: ModelSchema,
        chunk_size: int,
        without: frozenset[str] = frozenset(),
    ) -> MultivariateDrift:
        """`without`: features left out (ignored by the ModelMonitor's drift settings)."""
        ref = feature_frame(reference, schema)
        size = max(1, min(chunk_size, len(ref) // 2))
        columns = [f for f in schema.feature_names if f not in without]
        calc = nml.DataReconstructionDriftCalculator(column_names=columns, chunk_size=size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calc.fit(ref)
        calc.chunker = KeyChunker()
        return cls(schema=schema, calculator=calc)

    def errors(
        self, frame: pd.DataFrame, chunk_ids: np.ndarray, n_chunks: int
    ) -> list[tuple[float | None, float | None, bool]]:
        """Per chunk: (mean reconstruction error, upper threshold, alert).

        NannyML's own fitted imputers, encoder, scaler and PCA applied to all rows at once
        (every step is row-wise, so the per-chunk mean equals NannyML's per-chunk result;
        a unit test holds them equal). NannyML's per-chunk loop cost ~20 ms per chunk.
        """
        calc = self.calculator
        data = feature_frame(frame, self.schema)
        names = list(calc.column_names)
        cats = list(calc.categorical_column_names)
        conts = list(calc.continuous_column_names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if cats:
                data[cats] = calc._imputer_categorical.transform(data[cats])
            if conts:
                data[conts] = calc._imputer_continuous.transform(data[conts])
            x = calc._scaler.transform(calc._encoder.transform(data[names]).to_numpy())
            rebuilt = calc._pca.inverse_transform(calc._pca.transform(x))
        per_row = np.linalg.norm(x - rebuilt, axis=1)
        sums = np.bincount(chunk_ids, weights=per_row, minlength=n_chunks)
        counts = np.bincount(chunk_ids, minlength=n_chunks)
        lower = -np.inf if calc.lower_threshold_value is None else calc.lower_threshold_value
        upper = calc.upper_threshold_value
        out: list[tuple[float | None, float | None, bool]] = []
        for i in range(n_chunks):
            if counts[i] == 0:
                out.append((None, upper, False))
                continue
            value = float(sums[i] / counts[i])
            high = np.inf if upper is None else upper
            out.append((value, None if upper is None else float(upper), not lower < value < high))
        return out

    def result(self, frame: pd.DataFrame) -> Any:
        """NannyML's Result (its `.plot()` goes into the report); `frame` carries `_chunk`."""
        data = feature_frame(frame, self.schema)
        data[CHUNK_KEY] = frame[CHUNK_KEY].to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.calculator.calculate(data)


def multivariate_by_key(result: Any) -> dict[str, tuple[float | None, float | None, bool]]:
    """Chunk key -> (reconstruction error, its upper threshold, alert)."""
    df = result.filter(period="analysis").to_df()
    out: dict[str, tuple[float | None, float | None, bool]] = {}
    for _, row in df.iterrows():
        value = row.get(("reconstruction_error", "value"))
        upper = row.get(("reconstruction_error", "upper_threshold"))
        out[str(row[("chunk", "key")])] = (
            None if value is None or pd.isna(value) else float(value),
            None if upper is None or pd.isna(upper) else float(upper),
            bool(row.get(("reconstruction_error", "alert"), False)),
        )
    return out


def data_quality(
    frame: pd.DataFrame, schema: ModelSchema, chunk_ids: np.ndarray, n_chunks: int
) -> list[tuple[dict[str, float], dict[str, float]]]:
    """Per chunk: missing ratio and out-of-range share per feature (values as received).

    Out-of-range has `ModelSchema.out_of_range`'s meaning (share of *present* values outside
    the expected range or the limits, or an unknown category; such values were served),
    computed for all chunks in one pass instead of per chunk.
    """
    rows = np.bincount(chunk_ids, minlength=n_chunks).astype(float)
    missing: dict[str, np.ndarray] = {}
    outside: dict[str, np.ndarray] = {}
    for feat in schema.features:
        col = frame[feat.name]
        absent = col.isna().to_numpy()
        bad = schema.outside(feat, col)
        n_missing = np.bincount(chunk_ids, weights=absent.astype(float), minlength=n_chunks)
        n_bad = np.bincount(chunk_ids, weights=bad.astype(float), minlength=n_chunks)
        present = rows - n_missing
        with np.errstate(invalid="ignore", divide="ignore"):
            missing[feat.name] = np.where(rows > 0, n_missing / rows, 0.0)
            outside[feat.name] = np.where(present > 0, n_bad / present, 0.0)
    names = schema.feature_names
    return [
        ({f: float(missing[f][i]) for f in names}, {f: float(outside[f][i]) for f in names})
        for i in range(n_chunks)
    ]


def correlation_weights(
    reference_js: dict[str, np.ndarray],
    analysis_js: dict[str, np.ndarray],
    reference_auc: np.ndarray,
    analysis_auc: np.ndarray,
) -> dict[str, float]:
    """max(Pearson r, 0) of each feature's JS drift vs |estimated ROC AUC - reference mean|.

    NannyML's CorrelationRanker formula, over reference and analysed chunks together so
    that even a one-chunk batch has points to correlate. (The ranker itself only accepts
    NannyML's univariate Result, which the vectorised drift in univariate.py does not make.)
    """
    auc = np.concatenate([reference_auc, analysis_auc]).astype(float)
    change = np.abs(auc - np.nanmean(reference_auc)) if len(reference_auc) else auc * np.nan
    weights: dict[str, float] = {}
    for feature, ref_values in reference_js.items():
        drift = np.concatenate([ref_values, analysis_js.get(feature, np.zeros(0))])
        if len(drift) != len(change):
            continue
        ok = np.isfinite(drift) & np.isfinite(change)
        if ok.sum() < 3 or np.std(drift[ok]) == 0 or np.std(change[ok]) == 0:
            weights[feature] = 0.0
            continue
        corr = float(np.corrcoef(drift[ok], change[ok])[0, 1])
        weights[feature] = max(corr, 0.0) if np.isfinite(corr) else 0.0
    return weights


def drift_ranking(
    drift: list[FeatureDrift],
    importance: dict[str, float],
    correlation: dict[str, float],
    reliance: dict[str, float] | None = None,
    ignored: frozenset[str] = frozenset(),
) -> list[tuple[str, float]]:
    """Features by weight x correlation x JS drift in this chunk, highest first, zeros dropped.

    The weight is the feature's share of the model's reliance on this chunk's rows (mean
    |TreeSHAP contribution|, attribution.py) when given, else its feature importance: a
    feature the model does not rely on scores 0 and is left out, below every listed one,
    however much it drifts. Where no correlation could be computed, the feature counts
    fully, so the ranking degrades to reliance-weighted drift rather than disappearing.
    Features the ModelMonitor ignores (`ignored`) are left out.
    """
    share = reliance_share(reliance or {})
    scores: list[tuple[str, float]] = []
    for d in drift:
        if d.method != "jensen_shannon" or d.feature in ignored:
            continue
        if share:
            weight = share.get(d.feature, 0.0)
        else:
            weight = importance.get(d.feature, 0.0) if importance else 1.0
        corr = correlation.get(d.feature, 1.0)
        score = float(weight * corr * d.value)
        if np.isfinite(score) and score > 0:
            scores.append((d.feature, round(score, 6)))
    return sorted(scores, key=lambda item: -item[1])
